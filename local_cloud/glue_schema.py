"""Infer Glue Data Catalog column types from Parquet footers and JSON samples.

Type names are Glue's (Hive's): `string`, `bigint`, `double`, `boolean`,
`timestamp`, `date`, `array<...>`, `struct<name:type,...>`, `map<k,v>`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Columns = dict[str, str]  # column name -> Glue type, in column order


def glue_type(arrow: pa.DataType) -> str:
    """The Glue type name for an Arrow type."""
    t = pa.types
    if t.is_dictionary(arrow):
        return glue_type(arrow.value_type)
    if t.is_boolean(arrow):
        return "boolean"
    if t.is_int8(arrow) or t.is_uint8(arrow):
        return "tinyint"
    if t.is_int16(arrow) or t.is_uint16(arrow):
        return "smallint"
    if t.is_int32(arrow):
        return "int"
    if t.is_integer(arrow):
        return "bigint"
    if t.is_float16(arrow) or t.is_float32(arrow):
        return "float"
    if t.is_floating(arrow):
        return "double"
    if t.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if t.is_timestamp(arrow):
        return "timestamp"
    if t.is_date(arrow):
        return "date"
    if t.is_string(arrow) or t.is_large_string(arrow):
        return "string"
    if t.is_binary(arrow) or t.is_large_binary(arrow) or t.is_fixed_size_binary(arrow):
        return "binary"
    if t.is_map(arrow):
        return f"map<{glue_type(arrow.key_type)},{glue_type(arrow.item_type)}>"
    if t.is_list(arrow) or t.is_large_list(arrow) or t.is_fixed_size_list(arrow):
        return f"array<{glue_type(arrow.value_type)}>"
    if t.is_struct(arrow):
        fields = ",".join(f"{f.name}:{glue_type(f.type)}" for f in arrow)
        return f"struct<{fields}>"
    return "string"


def parquet_columns(source: Any) -> Columns:
    """Columns of a Parquet file; `source` is any seekable file object (only the footer is read)."""
    schema = pq.ParquetFile(source).schema_arrow
    return {field.name: glue_type(field.type) for field in schema}


# --- JSON -----------------------------------------------------------------

_NUMERIC = ("bigint", "double")


def _value_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        element: str | None = None
        for item in value:
            element = merge_types(element, _value_type(item))
        return f"array<{element or 'string'}>"
    if isinstance(value, dict):
        fields = object_columns(value)
        return "struct<" + ",".join(f"{k}:{v}" for k, v in fields.items()) + ">"
    return "string"


def object_columns(obj: dict[str, Any]) -> Columns:
    """Columns of one JSON object (keys whose values are all null are left out)."""
    return {k: typ for k, v in obj.items() if (typ := _value_type(v)) is not None}


def _struct_fields(struct: str) -> Columns:
    """Parse `struct<a:t,b:u>` back into fields (types may nest)."""
    body = struct[len("struct<") : -1]
    fields: Columns = {}
    depth, start = 0, 0
    for i, ch in enumerate(body + ","):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            name, _, typ = body[start:i].partition(":")
            if name:
                fields[name] = typ
            start = i + 1
    return fields


def merge_types(a: str | None, b: str | None) -> str | None:
    """The type that holds values of both: numbers widen to double, structs union, else string."""
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    if a in _NUMERIC and b in _NUMERIC:
        return "double"
    if a.startswith("array<") and b.startswith("array<"):
        return f"array<{merge_types(a[6:-1], b[6:-1])}>"
    if a.startswith("struct<") and b.startswith("struct<"):
        merged = merge_columns(_struct_fields(a), _struct_fields(b))
        return "struct<" + ",".join(f"{k}:{v}" for k, v in merged.items()) + ">"
    return "string"


def merge_columns(first: Columns, second: Columns) -> Columns:
    """Union of two column lists: first's order, then second's new columns appended."""
    merged = dict(first)
    for name, typ in second.items():
        merged[name] = merge_types(merged.get(name), typ) or "string"
    return merged


def json_columns(lines: Iterable[bytes]) -> Columns:
    """Columns of a JSON Lines sample (or of one JSON document spread over the lines).

    Raises ValueError when the sample holds no JSON object.
    """
    raw = list(lines)
    columns: Columns = {}
    seen = 0
    try:
        documents = [json.loads(line) for line in raw if line.strip()]
    except json.JSONDecodeError:
        # Not one object per line: maybe a single (pretty-printed) document or array.
        try:
            document = json.loads(b"\n".join(raw))
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        documents = document if isinstance(document, list) else [document]
    for doc in documents:
        if isinstance(doc, dict):
            columns = merge_columns(columns, object_columns(doc))
            seen += 1
    if not seen:
        raise ValueError("no JSON object in the sample")
    return columns


def sample_lines(data: bytes, truncated: bool) -> list[bytes]:
    """Lines of a sample; the last is dropped when the sample was cut mid-file."""
    lines = io.BytesIO(data).read().splitlines()
    if truncated and lines:
        lines = lines[:-1]
    return lines
