"""What the lake's assets share with the schedule and the command line: run tags, the lake's
state store and the change sets' keys. No asset is defined here, so importing it is cheap."""

from __future__ import annotations

from pipeline_platform.defs import keys
from pipeline_platform.defs.lake.state import StateStore
from pipeline_platform.resources.cloud import CloudResource

#: `true`: the run starts from one full export of the table.
REBUILD_TAG = "iot/rebuild"
#: An ISO time: where the lake stopped, so a catch-up does not export that hour's start again.
SINCE_TAG = "iot/catch_up_since"


def state_store(cloud: CloudResource) -> StateStore:
    """The lake tables' states and locks, beside the lake."""
    return StateStore(cloud.client("s3"), cloud.settings.lake_bucket, keys.STATE_PREFIX)


def change_set_key(table: str, version: int) -> str:
    """Where the rows that lake version `version` of `table` changed are kept (until loaded)."""
    return f"{keys.CHANGES_PREFIX}{table}/v{version:08d}.parquet"
