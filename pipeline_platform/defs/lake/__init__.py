"""Lake stage: the table exported to S3 and shaped into partitioned Parquet."""
