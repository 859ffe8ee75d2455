"""What the Dagster UI shows of a lake, catalog or warehouse table: its columns, described.

The columns and their descriptions are `warehouse_schema`'s; this module says them in
Dagster's terms (`dagster/column_schema`), for the asset definitions (the fixed
columns) and for each materialization (with the extra payload columns the table has
gained by then), so an asset's page answers "what is in here" without a query.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from pipeline_platform import warehouse_schema as ws

COLUMN_SCHEMA = "dagster/column_schema"
TABLE_NAME = "dagster/table_name"
ROW_COUNT = "dagster/row_count"


def column_schema(table: ws.Table, extras: Mapping[str, str] | None = None) -> dg.TableSchema:
    """`table`'s columns, each with its type and description, then `extras` (name -> type)."""
    fixed = [
        dg.TableColumn(
            c.name,
            c.type,
            description=c.description,
            constraints=dg.TableColumnConstraints(nullable=c.nullable),
        )
        for c in table.columns
    ]
    extra = [
        dg.TableColumn(name, logical, description=ws.EXTRA_COLUMN_DESCRIPTION)
        for name, logical in (extras or {}).items()
    ]
    return dg.TableSchema(columns=[*fixed, *extra])


def definition_metadata(table: ws.Table, qualified_name: str | None = None) -> dict[str, object]:
    """An asset definition's metadata for `table`: its fixed columns (and its table name)."""
    metadata: dict[str, object] = {COLUMN_SCHEMA: column_schema(table)}
    if qualified_name is not None:
        metadata[TABLE_NAME] = qualified_name
    return metadata
