"""Merge new versions into a lake table's reading-day partitions: latest write wins.

The incoming rows (a run's changes, shaped by `shaping`) are merged with the
lake's current rows of the days they fall on, key by key:

- a key the lake does not have is added;
- an incoming version replaces the lake's only when it is newer (its `version`
  column, the write time for readings) and differs in content. So re-running an
  older window never overwrites a newer version, and re-running any window
  changes nothing at all: no day is rewritten;
- the lake's rows are never removed (a delete in the table is not a delete here).

Only the days where something changed are written again, each as a whole, and
the rows that changed (new keys and new versions) are written apart as the
merge's change set: what a warehouse merges by key.

Every file a merge writes has the table's fixed columns and then every extra
payload column the table has had so far, in the order they first appeared (new
ones last). So an older file's columns are always the first columns of a newer
one, and a warehouse can load files of different ages in one COPY.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline_platform import warehouse_schema as ws

_PARQUET = "format parquet, compression zstd"


@dataclass(frozen=True)
class MergeResult:
    """What a merge did, by reading day (`YYYY-MM-DD`) of the days it rewrote."""

    #: Rows each rewritten day holds now.
    rows_by_day: dict[str, int]
    #: Keys each rewritten day gained or changed.
    changes_by_day: dict[str, int]
    #: Incoming versions: kept (new keys and newer versions), and older or unchanged ones.
    incoming: int
    applied: int
    new_keys: int
    superseded: int
    #: Days the incoming rows fall on (read), of which `rows_by_day` are the rewritten ones.
    days_read: tuple[str, ...]
    #: The table's extra columns after the merge, in file order, name -> `double` or `string`.
    extras: dict[str, str]

    @property
    def days(self) -> tuple[str, ...]:
        """The rewritten days, in order."""
        return tuple(sorted(self.rows_by_day))


def incoming_days(con: duckdb.DuckDBPyConnection, incoming: str = "incoming") -> list[str]:
    """The reading days (`YYYY-MM-DD`) the incoming rows fall on: the partitions to read."""
    rows = con.execute(f"select distinct cast(dt as varchar) from {incoming} order by 1")
    return [day for (day,) in rows.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [row[0] for row in con.execute(f"describe {relation}").fetchall()]


def _logical(duckdb_type: str) -> str:
    return "double" if duckdb_type.upper() in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER") else "string"


def merge(
    con: duckdb.DuckDBPyConnection,
    table: ws.Table,
    existing_files: list[str],
    out_dir: Path,
    change_set: Path,
    extras: dict[str, str],
    incoming: str = "incoming",
) -> MergeResult:
    """Merge temp table `incoming` into the lake rows of `existing_files`.

    `existing_files` are the lake's Parquet files of the incoming rows' days, in
    their Hive folders (`.../dt=YYYY-MM-DD/...`). `extras` are the table's extra
    columns so far, in file order; a column keeps the type it first had. The days
    that changed are written under `out_dir/dt=YYYY-MM-DD/`, and the changed rows,
    with the day files' columns, to the Parquet file `change_set`.
    """
    key = ", ".join(table.key)
    con.execute(
        f"""
        create or replace temp table merge_new as
        select * from {incoming}
        qualify row_number() over (partition by {key} order by {table.version} desc nulls last) = 1
        """
    )
    if existing_files:
        # A view, not a table: the join below is the one pass over the lake's rows, and
        # copying them into a table first cost about a sixth of the merge. A view takes no
        # prepared parameters, hence the literal list.
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in existing_files)
        con.execute(
            f"create or replace temp view merge_old as select * from read_parquet([{listed}], "
            "hive_partitioning = true, hive_types = {'dt': 'date'}, union_by_name = true)"
        )
    else:
        con.execute("create or replace temp view merge_old as select * from merge_new limit 0")
    new_columns, old_columns = _columns(con, "merge_new"), _columns(con, "merge_old")
    types = {
        name: kind
        for relation in ("merge_old", "merge_new")
        for name, kind in con.execute(
            f"select column_name, column_type from (describe {relation})"
        ).fetchall()
    }
    found = sorted((set(new_columns) | set(old_columns)) - set(table.column_names) - set(extras))
    extras = {**extras, **{name: _logical(types.get(name, "VARCHAR")) for name in found}}
    columns = [*table.file_columns, *extras, "dt"]

    def side(alias: str, present: list[str], name: str) -> str:
        return f'{alias}."{name}"' if name in present else "null"

    first = table.key[0]
    differs = " or ".join(
        f"{side('n', new_columns, c)} is distinct from {side('o', old_columns, c)}"
        for c in columns
        if c not in (table.version, "dt")
    )
    newer = (
        f"coalesce(n.{table.version} > o.{table.version}, "
        f"o.{table.version} is null and n.{table.version} is not null)"
    )
    take_new = f"(o.{first} is null or (n.{first} is not null and {newer} and ({differs})))"

    def typed(expr: str, name: str) -> str:
        if name not in extras:
            return expr
        return f"try_cast({expr} as {'double' if extras[name] == 'double' else 'varchar'})"

    picked = ", ".join(
        typed(
            f"case when {take_new} then {side('n', new_columns, c)} "
            f"else {side('o', old_columns, c)} end",
            c,
        )
        + f' as "{c}"'
        for c in columns
    )
    on = " and ".join(f"n.{k} = o.{k}" for k in table.key)
    con.execute(
        f"""
        create or replace temp table merged as
        select {picked},
               n.{first} is not null as is_incoming,
               n.{first} is not null and {take_new} as is_change,
               n.{first} is not null and o.{first} is null as is_new
        from merge_new n full outer join merge_old o on {on}
        """
    )
    totals = con.execute(
        "select count(*) filter (where is_incoming), count(*) filter (where is_change), "
        "count(*) filter (where is_new) from merged"
    ).fetchone()
    assert totals is not None
    incoming_rows, applied, new_keys = (int(n) for n in totals)
    per_day = con.execute(
        """
        select cast(dt as varchar), count(*), count(*) filter (where is_change)
        from merged group by dt having bool_or(is_change) order by 1
        """
    ).fetchall()
    days_read = incoming_days(con, "merge_new")
    rows_by_day = {day: int(rows) for day, rows, _ in per_day}
    changes_by_day = {day: int(changes) for day, _, changes in per_day}
    if rows_by_day:
        out_dir.mkdir(parents=True, exist_ok=True)
        quoted = ", ".join(f'"{c}"' for c in columns)
        # Rows in key order: a day written again from the same rows is the same file.
        con.execute(
            f"""
            copy (
                select {quoted} from merged
                where dt in (select dt from merged where is_change) order by dt, {key}
            ) to '{out_dir.as_posix()}' ({_PARQUET}, partition_by (dt),
                                          filename_pattern 'part-{{i}}', overwrite_or_ignore true)
            """
        )
    # The change set is the changed rows as the day files hold them (the same columns in the
    # same order, `dt` being a folder there): a warehouse loads them as it would load days.
    change_set.parent.mkdir(parents=True, exist_ok=True)
    file_columns = ", ".join(f'"{c}"' for c in columns if c != "dt")
    con.execute(
        f"copy (select {file_columns} from merged where is_change order by {key}) "
        f"to '{change_set.as_posix()}' ({_PARQUET})"
    )
    con.execute("drop view merge_old")
    for name in ("merge_new", "merged"):
        con.execute(f"drop table {name}")
    return MergeResult(
        rows_by_day,
        changes_by_day,
        incoming_rows,
        applied,
        new_keys,
        incoming_rows - applied,
        tuple(days_read),
        extras,
    )
