"""Where things live inside the stacks' buckets: key prefixes, named once.

Plain constants (no troposphere), so the pipeline can import them without
loading the template code. The templates grant access by these prefixes and
output them; the pipeline and the local cloud read and write under them.
"""

from __future__ import annotations

#: Artifact bucket: the source archives the image is built from (`image/<sha256>.zip`).
IMAGE_SOURCE_PREFIX = "image/"
#: Quarantine bucket: what the topic rule's error action keeps (`errors/<time>-<uuid>.json`).
RULE_ERRORS_PREFIX = "errors/"
#: Lake bucket: DynamoDB exports (`exports/<table>/<window>/AWSDynamoDB/<ExportId>/...`).
EXPORTS_PREFIX = "exports/"
#: Lake bucket: the Parquet lake the crawler catalogs (`lake/<table>/dt=YYYY-MM-DD/`).
LAKE_PREFIX = "lake/"
#: Lake bucket: the batch pipeline's own records beside the lake, never crawled: each lake
#: table's state and lock, each run's export summary, the change sets, the COPY manifests.
PIPELINE_PREFIX = "pipeline/"
#: Below PIPELINE_PREFIX: the rows each lake version changed (`<table>/v<version>.parquet`),
#: which the warehouse loads, and the Redshift COPY manifests (`<table>/<load>.manifest`).
CHANGES_PREFIX = f"{PIPELINE_PREFIX}changes/"
#: Below PIPELINE_PREFIX: each lake table's state and lock, which the hourly schedule reads.
STATE_PREFIX = f"{PIPELINE_PREFIX}state/"
MANIFEST_PREFIX = f"{PIPELINE_PREFIX}manifests/"
#: Below PIPELINE_PREFIX: the stdout and stderr of every step of a deployment's Dagster runs.
COMPUTE_LOGS_PREFIX = f"{PIPELINE_PREFIX}compute-logs/"
#: Days a step's output is kept under COMPUTE_LOGS_PREFIX. An older run keeps its events in
#: Dagster's database; only its output is gone.
COMPUTE_LOGS_EXPIRE_DAYS = 90
