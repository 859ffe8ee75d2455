"""IoT SQL: each construct of the 2016-03-23 dialect the local rules engine evaluates."""

from __future__ import annotations

import json
import re

import pytest

from local_cloud.iot_sql import (
    IotSqlError,
    MessageContext,
    SubstitutionTemplate,
    parse_rule_sql,
    topic_matches,
)

READING = {
    "device_id": "sensor-102",
    "timestamp": 1700100500,
    "temperature": 75,
    "humidity": 40,
    "location": {"site": "north", "rack": {"row": 3}},
    "tags": ["a", "b"],
    "online": True,
}


def message(payload: object = READING, topic: str = "iot/sensors", client_id: str = "dev-1"):
    """A message context; dicts are sent as JSON, bytes as they are."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return MessageContext(topic, data, client_id, timestamp_ms=1_700_100_500_123)


def select(sql: str, ctx: MessageContext | None = None) -> dict | None:
    """Evaluate a rule and decode its JSON output (None when it does not match)."""
    out = parse_rule_sql(sql).evaluate(ctx or message())
    return None if out is None else json.loads(out)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("iot/sensors", "iot/sensors", True),
        ("iot/sensors", "iot/sensors/x", False),
        ("iot/+", "iot/sensors", True),
        ("iot/+", "iot/sensors/x", False),
        ("+/sensors", "iot/sensors", True),
        ("iot/#", "iot/sensors/a/b", True),
        ("iot/#", "iot", True),  # '#' also matches the parent level (MQTT 4.7.1.2)
        ("#", "anything/at/all", True),
        ("fleet/+/telemetry", "fleet/a/b/telemetry", False),
        ("iot/sensors", "iot/Sensors", False),
    ],
)
def test_topic_filters(topic_filter: str, topic: str, expected: bool) -> None:
    """GIVEN a FROM topic filter WHEN a topic is checked THEN + is one level, # the rest."""
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("where", "matches"),
    [
        ("temperature = 75", True),
        ("temperature <> 75", False),
        ("temperature != 74", True),
        ("temperature < 75", False),
        ("temperature <= 75", True),
        ("temperature > 50", True),
        ("temperature >= 76", False),
        ("device_id = 'sensor-102'", True),
        ("location.site = 'north'", True),
        ("location.rack.row > 2", True),
        ("tags[1] = 'b'", True),
        ("online = true", True),
        ("temperature > 50 AND humidity < 50", True),
        ("temperature > 50 AND humidity > 50", False),
        ("temperature < 0 OR humidity = 40", True),
        ("NOT temperature > 80", True),
        ("NOT (temperature > 50 AND humidity < 50)", False),
        ("temperature < 0 OR humidity = 40 AND device_id = 'x'", False),  # AND binds tighter
        ("(temperature < 0 OR humidity = 40) AND device_id = 'sensor-102'", True),
        ("temperature * 9 / 5 + 32 = 167", True),
        ("-temperature < 0", True),
        ("temperature = '75'", True),  # a numeric string compares as a number, as in AWS
        ("'TRUE' AND online", True),  # "true"/"false" strings act as booleans in logic
    ],
)
def test_where_clause(where: str, matches: bool) -> None:
    """GIVEN a WHERE condition WHEN a reading arrives THEN the rule fires only if true."""
    result = select(f"SELECT * FROM 'iot/sensors' WHERE {where}")
    assert (result is not None) is matches


@pytest.mark.parametrize(
    "where",
    [
        "pressure > 1000",
        "pressure < 1000",
        "NOT pressure > 1000",  # NOT Undefined is Undefined, not true
        "pressure = 1 OR temperature > 50",  # AWS: OR needs two booleans
        "location.floor = 2",
        "tags[5] = 'x'",
        "online > 1",  # ordering a boolean means nothing
    ],
)
def test_missing_attribute_in_where_means_no_match(where: str) -> None:
    """GIVEN a WHERE on an attribute the payload lacks THEN the rule does not match."""
    assert select(f"SELECT * FROM 'iot/sensors' WHERE {where}") is None


def test_is_null_and_is_undefined() -> None:
    """GIVEN IS [NOT] UNDEFINED / NULL WHEN fields are missing or null THEN tests are exact."""
    ctx = message({"device_id": "d", "humidity": None})
    assert select("SELECT * FROM 'iot/sensors' WHERE temperature IS UNDEFINED", ctx)
    assert select("SELECT * FROM 'iot/sensors' WHERE humidity IS NULL", ctx)
    assert select("SELECT * FROM 'iot/sensors' WHERE device_id IS NOT NULL", ctx)
    assert select("SELECT * FROM 'iot/sensors' WHERE humidity IS NOT NULL", ctx) is None


def test_select_fields_aliases_and_nested_fields() -> None:
    """GIVEN a projection WHEN evaluated THEN keys are aliases or the last field name."""
    out = select(
        "SELECT device_id AS id, temperature, location.rack.row, tags[0] AS first_tag, "
        "temperature * 2 AS double_temp, 'v1' AS schema FROM 'iot/sensors'"
    )
    assert out == {
        "id": "sensor-102",
        "temperature": 75,
        "row": 3,
        "first_tag": "a",
        "double_temp": 150,
        "schema": "v1",
    }


def test_select_star_with_extra_fields_and_undefined_left_out() -> None:
    """GIVEN SELECT *, extras WHEN an extra is Undefined THEN it is omitted, the rest kept."""
    out = select("SELECT *, pressure AS p, topic() AS source FROM 'iot/sensors'")
    assert out == {**READING, "source": "iot/sensors"}


def test_functions() -> None:
    """GIVEN topic(), topic(n), clientid(), timestamp(), newuuid() THEN AWS's values."""
    ctx = message(topic="fleet/site-7/telemetry", client_id="paho-42")
    out = select(
        "SELECT topic() AS t, topic(2) AS site, topic(9) AS none, clientid() AS cid, "
        "timestamp() AS ts, newuuid() AS id FROM 'fleet/+/telemetry'",
        ctx,
    )
    assert out is not None
    assert out["t"] == "fleet/site-7/telemetry"
    assert out["site"] == "site-7"
    assert "none" not in out  # topic(n) past the last level is Undefined
    assert out["cid"] == "paho-42"
    assert out["ts"] == 1_700_100_500_123  # epoch milliseconds of arrival
    assert re.fullmatch(r"[0-9a-f-]{36}", out["id"])


def test_functions_in_where() -> None:
    """GIVEN a WHERE on topic(2) and clientid() THEN they filter like fields do."""
    ctx = message(topic="fleet/site-7/telemetry", client_id="paho-42")
    sql = "SELECT * FROM 'fleet/#' WHERE topic(2) = 'site-7' AND clientid() = 'paho-42'"
    assert select(sql, ctx) is not None
    assert select(sql.replace("site-7", "site-8"), ctx) is None


def test_select_star_passes_json_payload_byte_exact() -> None:
    """GIVEN SELECT * alone WHEN any payload arrives THEN the bytes go out unchanged."""
    raw = b'{"device_id": "sensor-101",   "temperature": 22.50}'
    assert parse_rule_sql("SELECT * FROM 'iot/sensors'").evaluate(message(raw)) == raw


def test_non_json_payload_passes_only_through_bare_select_star() -> None:
    """GIVEN a non-JSON payload THEN SELECT * forwards it; field references do not match."""
    raw = b"Invalid JSON Data\x00\xff"
    ctx = message(raw)
    assert parse_rule_sql("SELECT * FROM 'iot/sensors'").evaluate(ctx) == raw
    assert parse_rule_sql("SELECT * FROM 'iot/sensors' WHERE temperature > 1").evaluate(ctx) is None
    assert parse_rule_sql("SELECT device_id FROM 'iot/sensors'").evaluate(ctx) is None
    # Functions do not read the payload, so they still work on it.
    out = parse_rule_sql("SELECT topic() AS t FROM 'iot/sensors'").evaluate(ctx)
    assert out is not None and json.loads(out) == {"t": "iot/sensors"}


@pytest.mark.parametrize(
    ("template", "payload", "expected"),
    [
        ("${device_id}", READING, "sensor-102"),
        ("${topic()}/${device_id}", READING, "iot/sensors/sensor-102"),
        ("${location.site}-${temperature}", READING, "north-75"),
        ("${online}", READING, "true"),
        ("${device_id}", {"temperature": 1}, ""),  # missing field renders empty
        ("${device_id}", b"Invalid JSON Data", ""),  # so does a non-JSON payload
        ("static-key", READING, "static-key"),
    ],
)
def test_substitution_templates(template: str, payload: object, expected: str) -> None:
    """GIVEN an action template WHEN rendered THEN it reads the ORIGINAL message."""
    assert SubstitutionTemplate(template).render(message(payload)) == expected


def test_newuuid_template_differs_per_message() -> None:
    """GIVEN ${newuuid()} WHEN rendered twice THEN two distinct UUIDs."""
    template = SubstitutionTemplate("${newuuid()}")
    first, second = template.render(message()), template.render(message())
    assert first != second and len(first) == 36


@pytest.mark.parametrize(
    ("sql", "complaint"),
    [
        ("SELECT * FROM iot/sensors", "expected string"),
        ("SELECT * 'iot/sensors'", "expected FROM"),
        ("SELECT FROM 'iot/sensors'", "expected a value"),
        ("SELECT * FROM 'iot/sensors' WHERE", "expected a value"),
        ("SELECT * FROM 'iot/#/x'", "'#' must be a whole last level"),
        ("SELECT * FROM 'iot/a+'", "'+' must be a whole level"),
        ("SELECT md5(device_id) FROM 'iot/sensors'", "md5() is not supported"),
        ("SELECT topic(1, 2) FROM 'iot/sensors'", "does not take 2"),
        ("SELECT * FROM 'iot/sensors' WHERE a = 1 b", "expected end"),
        ("SELECT * FROM 'iot/sensors' WHERE a ~ 1", "unexpected character"),
    ],
)
def test_unparseable_sql_is_a_clear_error(sql: str, complaint: str) -> None:
    """GIVEN SQL the engine cannot run THEN parsing fails and says what and where."""
    with pytest.raises(IotSqlError, match=re.escape(complaint)):
        parse_rule_sql(sql)


def test_keywords_are_case_insensitive_and_strings_escape_quotes() -> None:
    """GIVEN lower-case keywords and '' inside a string THEN it parses as AWS would."""
    ctx = message({"device_id": "o'brien"})
    assert select("select device_id from 'iot/sensors' where device_id = 'o''brien'", ctx) == {
        "device_id": "o'brien"
    }
