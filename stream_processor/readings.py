"""One record's payload in, a DynamoDB item or a quarantine reason out.

This is the reading contract of ARCHITECTURE.md in code: what a valid reading
is, how it is normalised, which alerts and quality flags it raises.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from stream_processor import contract as c
from stream_processor.attribute_values import (
    UnstorableValue,
    format_number,
    item_size,
    to_attribute_value,
)
from stream_processor.config import Config

#: DynamoDB's item size limit (400 KB).
MAX_ITEM_BYTES = 400 * 1024
#: A timestamp above this is in epoch milliseconds (1e11 s is the year 5138).
MILLISECONDS_THRESHOLD = 1e11

_DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")
_KNOWN_FIELDS = frozenset({c.DEVICE_ID, c.TIMESTAMP, c.TEMPERATURE, c.HUMIDITY})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: json.loads without its per-call argument checks (it calls this same decoder).
_json_decode = json.JSONDecoder().decode
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
#: A str as JSON text, UTF-8 kept (json's C encoder, as `_ENCODE` uses for strings).
_quote = json.encoder.encode_basestring


def _opening(name: str, kind: str) -> str:
    """The start of one attribute in DynamoDB JSON text: `"name":{"N":`."""
    return f'{_quote(name)}:{{"{kind}":'


_DEVICE_ID_S = _opening(c.DEVICE_ID, "S")
_TIMESTAMP_N = _opening(c.TIMESTAMP, "N")
_TEMPERATURE_N = _opening(c.TEMPERATURE, "N")
_HUMIDITY_N = _opening(c.HUMIDITY, "N")
_ALERTS_L = _opening(c.ALERTS, "L")
_QUALITY_FLAGS_L = _opening(c.QUALITY_FLAGS, "L")
_SEQUENCE_NUMBER_S = _opening(c.SEQUENCE_NUMBER, "S")
_INGESTED_AT_N = _opening(c.INGESTED_AT, "N")
_EXPIRES_AT_N = _opening(c.EXPIRES_AT, "N")
_ALERT_DATE_S = _opening(c.ALERT_DATE, "S")


def _code_list(codes: list[str]) -> str:
    """Alert or flag codes as the text of a DynamoDB list of strings."""
    if not codes:
        return "[]"  # most readings: no alerts, no flags
    return "[" + ",".join([f'{{"S":{_quote(code)}}}' for code in codes]) + "]"


class Accepted(NamedTuple):
    """A reading ready to store: its key and its item already encoded as DynamoDB JSON."""

    device_id: str
    timestamp: str
    item_json: bytes
    #: The reading's time in epoch seconds, and its measurements when within the sensor's
    #: range (None when missing or out of range): what alert state changes are judged on.
    seconds: float = 0.0
    temperature: float | None = None
    humidity: float | None = None


class Rejected(NamedTuple):
    """A payload that cannot be stored, with a reason code from the contract."""

    reason: str
    detail: str
    device_id: str | None = None


# Named tuples rather than frozen dataclasses: as immutable, and a tenth of the cost to
# build, which counts at one outcome per record.


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _iso(seconds: float) -> str:
    """Epoch seconds as an ISO-8601 UTC time, for messages."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(raw: object) -> tuple[str, float]:
    """Normalise a reading's time to epoch seconds: (DynamoDB number text, value).

    Accepts epoch seconds, epoch milliseconds (recognised by size) and ISO-8601
    strings (naive means UTC). Fractional seconds are kept. Raises `_Reject` with
    INVALID_TIMESTAMP for anything else; plausibility is `check_plausible`'s job.
    """
    if type(raw) is int or type(raw) is float:
        if not math.isfinite(raw):
            raise _Reject(c.INVALID_TIMESTAMP, f"timestamp {raw} is not a finite number")
        value = raw / 1000 if raw > MILLISECONDS_THRESHOLD else raw
        if not 0 <= value < MILLISECONDS_THRESHOLD:
            raise _Reject(c.INVALID_TIMESTAMP, f"timestamp {raw!r} is out of range")
        try:
            return format_number(value), value
        except UnstorableValue as error:
            raise _Reject(c.INVALID_TIMESTAMP, f"timestamp: {error}") from None
    if type(raw) is str:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise _Reject(
                c.INVALID_TIMESTAMP, f"timestamp {raw[:64]!r} is not an ISO-8601 time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        whole = delta.days * 86400 + delta.seconds
        if whole < 0:
            raise _Reject(c.INVALID_TIMESTAMP, f"timestamp {raw!r} is before 1970")
        micros = delta.microseconds
        # Exact decimal text rather than float arithmetic: microseconds survive.
        text = f"{whole}.{micros:06d}".rstrip("0") if micros else str(whole)
        return text, whole + micros / 1e6
    raise _Reject(c.INVALID_TIMESTAMP, f"timestamp has unsupported type {type(raw).__name__}")


def check_plausible(seconds: float, arrival: float, config: Config) -> None:
    """Refuse a reading time no working clock would give.

    Before `config.earliest_timestamp` (2000-01-01 by default) the device's clock was
    never set; more than `config.max_clock_skew_s` after the record reached Kinesis
    (`arrival`) the clock runs fast. Either way the time cannot be the reading's key.
    Late readings (in the past, after the earliest time) are normal: devices buffer.
    """
    if seconds < config.earliest_timestamp:
        raise _Reject(
            c.TIMESTAMP_TOO_EARLY,
            f"timestamp {_iso(seconds)} is before {_iso(config.earliest_timestamp)}:"
            " the device's clock was probably never set",
        )
    if seconds - arrival > config.max_clock_skew_s:
        raise _Reject(
            c.TIMESTAMP_IN_FUTURE,
            f"timestamp {_iso(seconds)} is {seconds - arrival:.0f} s after the record reached"
            f" Kinesis ({_iso(arrival)}); at most {config.max_clock_skew_s:g} s of clock skew"
            " is allowed",
        )


def _measurement(
    payload: dict[str, Any], field: str, low: float, high: float, flags: list[str], invalid: str
) -> tuple[str | None, float | None]:
    """Read a measurement: (its DynamoDB number text, its value if within the sensor's range)."""
    raw = payload.get(field)
    if raw is None:
        flags.append(f"MISSING_{field.upper()}")
        return None, None
    value: int | float
    if type(raw) is int or type(raw) is float:
        value = raw
    elif type(raw) is str:
        if not _NUMERIC_TEXT.fullmatch(raw):
            raise _Reject(invalid, f"{field} {raw[:64]!r} is not a number")
        value = int(raw) if _INTEGER_TEXT.fullmatch(raw) else float(raw)
        flags.append(f"COERCED_{field.upper()}")
    else:
        raise _Reject(invalid, f"{field} has type {type(raw).__name__}, expected a number")
    try:
        text = format_number(value)
    except UnstorableValue as error:
        raise _Reject(invalid, f"{field}: {error}") from None
    if low <= value <= high:
        return text, value
    flags.append(f"{field.upper()}_OUT_OF_RANGE")
    return text, None


def classify(
    data: bytes,
    sequence_number: str,
    arrival: float,
    ingested_at: str,
    expires_at: str,
    config: Config,
) -> Accepted | Rejected:
    """Validate and normalise one payload. Never raises for any input bytes.

    `arrival` is when the record reached Kinesis (epoch seconds): a reading dated
    too far after it is refused. `ingested_at` and `expires_at` are the batch's
    DynamoDB number texts for the ingestion-time attributes.
    """
    payload = None
    try:
        payload = _decode(data)
        return _accept(payload, sequence_number, arrival, ingested_at, expires_at, config)
    except _Reject as reject:
        device_id = payload.get(c.DEVICE_ID) if payload is not None else None
        return Rejected(reject.reason, reject.detail, device_id if type(device_id) is str else None)


def _decode(data: bytes) -> dict[str, Any]:
    if not data.strip():
        raise _Reject(c.EMPTY_PAYLOAD, "the record's data is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Reject(c.INVALID_JSON, f"payload is not UTF-8 text ({error.reason})") from None
    try:
        payload = _json_decode(text)
    except ValueError as error:
        raise _Reject(c.INVALID_JSON, f"payload is not JSON: {error}") from None
    except RecursionError:
        raise _Reject(c.INVALID_JSON, "payload nests too deeply to parse") from None
    if type(payload) is not dict:
        raise _Reject(c.NOT_AN_OBJECT, f"payload is a JSON {type(payload).__name__}, not an object")
    return payload


def _accept(
    payload: dict[str, Any],
    sequence_number: str,
    arrival: float,
    ingested_at: str,
    expires_at: str,
    config: Config,
) -> Accepted:
    device_id = payload.get(c.DEVICE_ID)
    if device_id is None:
        raise _Reject(c.MISSING_DEVICE_ID, "payload has no device_id")
    if type(device_id) is not str or not _DEVICE_ID.fullmatch(device_id):
        raise _Reject(
            c.INVALID_DEVICE_ID,
            f"device_id {str(device_id)[:64]!r} is not 1-128 characters of [A-Za-z0-9_.:-]",
        )
    raw_timestamp = payload.get(c.TIMESTAMP)
    seconds: float
    if (
        type(raw_timestamp) is int
        and config.earliest_timestamp <= raw_timestamp <= arrival + config.max_clock_skew_s
        and raw_timestamp <= MILLISECONDS_THRESHOLD
    ):
        # Most devices send whole epoch seconds: already normal and plausible.
        timestamp, seconds = str(raw_timestamp), raw_timestamp
    else:
        if raw_timestamp is None:
            raise _Reject(c.MISSING_TIMESTAMP, "payload has no timestamp")
        timestamp, seconds = parse_timestamp(raw_timestamp)
        check_plausible(seconds, arrival, config)
    reserved = c.RESERVED_ATTRIBUTES.intersection(payload)
    if reserved:
        raise _Reject(
            c.RESERVED_FIELD, f"payload sets attributes the processor owns: {sorted(reserved)}"
        )

    flags: list[str] = []
    alerts: list[str] = []
    temperature_text, temperature = _measurement(
        payload,
        c.TEMPERATURE,
        config.temperature_min_c,
        config.temperature_max_c,
        flags,
        c.INVALID_TEMPERATURE,
    )
    humidity_text, humidity = _measurement(
        payload,
        c.HUMIDITY,
        config.humidity_min_pct,
        config.humidity_max_pct,
        flags,
        c.INVALID_HUMIDITY,
    )
    if temperature is not None and temperature > config.high_temperature_c:
        alerts.append(c.HIGH_TEMPERATURE)
    if humidity is not None and humidity < config.low_humidity_pct:
        alerts.append(c.LOW_HUMIDITY)

    # The item is written as DynamoDB JSON text directly, one attribute per part:
    # numbers are already DynamoDB number text, strings go through json's encoder.
    parts = [f"{_DEVICE_ID_S}{_quote(device_id)}}}", f'{_TIMESTAMP_N}"{timestamp}"}}']
    if temperature_text is not None:
        parts.append(f'{_TEMPERATURE_N}"{temperature_text}"}}')
    if humidity_text is not None:
        parts.append(f'{_HUMIDITY_N}"{humidity_text}"}}')
    for name, value in payload.items():
        if name in _KNOWN_FIELDS:
            continue
        if not name:
            raise _Reject(c.INVALID_FIELD, "payload has an empty attribute name")
        try:
            parts.append(f"{_quote(name)}:{_ENCODE(to_attribute_value(value, name))}")
        except UnstorableValue as error:
            raise _Reject(c.INVALID_FIELD, str(error)) from None
    parts += (
        f"{_ALERTS_L}{_code_list(alerts)}}}",
        f"{_QUALITY_FLAGS_L}{_code_list(flags)}}}",
        f"{_SEQUENCE_NUMBER_S}{_quote(sequence_number)}}}",
        f'{_INGESTED_AT_N}"{ingested_at}"}}',
        f'{_EXPIRES_AT_N}"{expires_at}"}}',
    )
    if alerts:
        alert_date = time.strftime("%Y-%m-%d", time.gmtime(seconds))
        parts.append(f"{_ALERT_DATE_S}{_quote(alert_date)}}}")

    try:
        encoded = ("{" + ",".join(parts) + "}").encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject(c.INVALID_FIELD, "payload holds text that is not valid Unicode") from None
    # JSON text is never smaller than DynamoDB's size, so the exact count is rarely needed.
    if len(encoded) > MAX_ITEM_BYTES and item_size(json.loads(encoded)) > MAX_ITEM_BYTES:
        raise _Reject(c.ITEM_TOO_LARGE, f"item is larger than DynamoDB's {MAX_ITEM_BYTES} bytes")
    return Accepted(device_id, timestamp, encoded, seconds, temperature, humidity)
