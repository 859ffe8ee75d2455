"""Warehouse stage: the lake's Parquet merged into `raw.*` (Redshift, or DuckDB locally)."""
