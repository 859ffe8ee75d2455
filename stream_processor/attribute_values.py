"""JSON values to DynamoDB attribute values (DynamoDB JSON), built directly.

Building `{"N": "22.5"}` by hand is several times cheaper than boto3's
TypeSerializer with Decimal, and it lets us refuse, per record, anything that
would make DynamoDB reject a whole BatchWriteItem request.
"""

from __future__ import annotations

import math
from typing import Any

#: DynamoDB allows 32 levels of nested lists and maps.
MAX_NESTING = 32
#: Numbers: at most 38 significant digits, magnitude in [1E-130, 1E+126).
MAX_NUMBER_DIGITS = 38
MAX_NUMBER = 1e126
MIN_NUMBER = 1e-130
#: Any int of magnitude below this has at most 38 digits.
_PRECISE_INT_LIMIT = 10**MAX_NUMBER_DIGITS


class UnstorableValue(ValueError):
    """A value DynamoDB cannot store; the message says where and why."""


def format_number(value: int | float) -> str:
    """Render a finite int or float as a DynamoDB number string.

    Integral floats lose their ".0" so 1700100000 and 1700100000.0 are one key.
    Raises UnstorableValue outside DynamoDB's range or precision.
    """
    if isinstance(value, int):  # callers never pass bool: it is not a number here
        text = str(value)
        if -_PRECISE_INT_LIMIT < value < _PRECISE_INT_LIMIT:
            return text  # the common case, and always within range and precision
        digits = text.lstrip("-")
        if len(digits) > 126 or len(digits.rstrip("0")) > MAX_NUMBER_DIGITS:
            raise UnstorableValue(f"number {text[:40]}... is outside DynamoDB's range")
        return text
    if not math.isfinite(value):
        raise UnstorableValue(f"{value} is not a number DynamoDB can store")
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    magnitude = abs(value)
    if magnitude and not MIN_NUMBER <= magnitude < MAX_NUMBER:
        raise UnstorableValue(f"number {value!r} is outside DynamoDB's range")
    text = repr(value)
    # Python writes 1e+100; DynamoDB (like Decimal) expects an upper-case exponent.
    return text.replace("e", "E") if "e" in text else text


#: One DynamoDB attribute value, e.g. {"N": "22.5"} or {"M": {...}}.
AttributeValue = dict[str, Any]


def to_attribute_value(value: object, path: str, depth: int = 0) -> AttributeValue:
    """Convert a value parsed from JSON into a DynamoDB attribute value.

    Numbers become N, strings S, booleans BOOL, null NULL, objects M and lists
    L. `path` names the field in error messages. Raises UnstorableValue for
    NaN/Infinity, numbers out of range, empty map keys and nesting deeper than
    DynamoDB allows.
    """
    # Exact type checks, not isinstance: bool is an int subclass, and only json's own
    # types can come out of json.loads.
    if type(value) is str:
        return {"S": value}
    if type(value) is bool:
        return {"BOOL": value}
    if type(value) is int or type(value) is float:
        return {"N": format_number(value)}
    if value is None:
        return {"NULL": True}
    if type(value) is list:
        if depth >= MAX_NESTING:
            raise UnstorableValue(f"{path} is nested deeper than {MAX_NESTING} levels")
        return {
            "L": [to_attribute_value(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        }
    if type(value) is dict:
        if depth >= MAX_NESTING:
            raise UnstorableValue(f"{path} is nested deeper than {MAX_NESTING} levels")
        members = {}
        for key, member in value.items():
            if not key:
                raise UnstorableValue(f"{path} has an empty attribute name")
            members[key] = to_attribute_value(member, f"{path}.{key}", depth + 1)
        return {"M": members}
    raise UnstorableValue(f"{path} has a value of unsupported type {type(value).__name__}")


def attribute_value_size(value: AttributeValue) -> int:
    """DynamoDB's billed size in bytes of one attribute value (documented rules)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8", "surrogatepass"))
    if kind == "N":
        digits = len(inner.split("E")[0].lstrip("-").replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(v) for v in inner)
    return 3 + sum(
        1 + len(k.encode("utf-8", "surrogatepass")) + attribute_value_size(v)
        for k, v in inner.items()
    )


def item_size(item: dict[str, AttributeValue]) -> int:
    """DynamoDB's size in bytes of an item: attribute names plus values."""
    return sum(
        len(name.encode("utf-8", "surrogatepass")) + attribute_value_size(value)
        for name, value in item.items()
    )
