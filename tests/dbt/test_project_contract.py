"""The dbt project follows the reading contract and the warehouse schema, and cannot drift."""

from __future__ import annotations

import duckdb
import pytest
import yaml

from pipeline_platform import warehouse_schema
from stream_processor import contract
from tests.dbt.dbt_project_runner import PROJECT_DIR


def load_yaml(relative: str) -> dict:
    return yaml.safe_load((PROJECT_DIR / relative).read_text())


def test_code_lists_equal_the_contract() -> None:
    # GIVEN the codes the dbt project tests and explodes
    project_vars = load_yaml("dbt_project.yml")["vars"]
    # THEN they are exactly the contract's, in its order
    assert tuple(project_vars["alert_codes"]) == contract.ALERT_CODES
    assert tuple(project_vars["quality_flag_codes"]) == contract.QUALITY_FLAG_CODES
    assert tuple(project_vars["quarantine_reasons"]) == contract.QUARANTINE_REASONS
    assert project_vars["rule_error_reasons"] == [contract.TOPIC_RULE_ERROR]


def test_sources_describe_every_warehouse_column() -> None:
    # GIVEN the dbt sources and the warehouse schema the loaders create
    source = load_yaml("models/staging/__sources.yml")["sources"][0]
    tables = {t["name"]: t for t in source["tables"]}
    expected = {
        warehouse_schema.READINGS_TABLE: warehouse_schema.READINGS_COLUMNS,
        warehouse_schema.QUARANTINE_TABLE: warehouse_schema.QUARANTINE_COLUMNS,
        warehouse_schema.RULE_ERRORS_TABLE: warehouse_schema.RULE_ERRORS_COLUMNS,
    }
    # THEN each raw table is described column for column, in the schema's own words: the
    # schema owns the text, and dbt docs show the same description the loaders document
    assert set(tables) == set(expected)
    for name, columns in expected.items():
        described = [(c["name"], c.get("description")) for c in tables[name]["columns"]]
        assert described == [(c.name, c.description) for c in columns], name


@pytest.mark.parametrize("table", warehouse_schema.TABLES, ids=lambda t: t.name)
def test_raw_tables_refuse_nulls_where_the_schema_forbids_them(table) -> None:
    # GIVEN a raw table as the loads create it (DuckDB here; Redshift enforces NOT NULL too)
    con = duckdb.connect()
    con.execute(f"create schema {warehouse_schema.RAW_SCHEMA}")
    con.execute(warehouse_schema.create_table_sql(table.name, table.columns, "duckdb"))
    required = [c.name for c in table.columns if not c.nullable]
    assert set(table.key) | {"dt"} <= set(required)
    # WHEN a row lacks one of those columns THEN the warehouse refuses it, so the load fails
    # rather than storing it, and a dbt not_null test on the column could never fail
    for missing in required:
        values = ", ".join("null" if c.name == missing else _sample(c) for c in table.columns)
        with pytest.raises(duckdb.ConstraintException):
            con.execute(f"insert into {warehouse_schema.RAW_SCHEMA}.{table.name} values ({values})")
    source = load_yaml("models/staging/__sources.yml")["sources"][0]
    (described,) = [t for t in source["tables"] if t["name"] == table.name]
    tested = {c["name"] for c in described["columns"] if "not_null" in c.get("data_tests", [])}
    assert not tested & set(required)


def _sample(column) -> str:
    """A value of `column`'s type."""
    return {
        "string": "'x'",
        "double": "1.0",
        "timestamp": "timestamp '2026-12-01 10:00:00'",
        "date": "date '2026-12-01'",
    }[column.type]
