"""Catalog stage: the Glue crawler keeps the Data Catalog in step with the lake."""
