"""The lake key: one customer managed key for the lake, the crawler's logs and the warehouse."""

from __future__ import annotations

from troposphere import Template
from troposphere.kms import Key

from cloudformation.kms import customer_key, logs_statement
from cloudformation.naming import Naming

#: The log groups Glue writes crawler (and job) logs to.
GLUE_LOG_GROUPS = "/aws-glue/*"


def add_lake_key(t: Template, naming: Naming) -> Key:
    """Add the rotating lake key (and its alias)."""
    return customer_key(
        t,
        "LakeKey",
        alias=naming.name("kms", "lake"),
        description=f"Encrypts the {naming.env} lake, crawler logs and the Redshift cluster.",
        service_statements=[logs_statement("CloudWatchLogsEncryptsCrawlerLogs", GLUE_LOG_GROUPS)],
    )
