"""A mapping's FilterCriteria: which stream records pass, by EventBridge's pattern rules."""

from __future__ import annotations

import json

import pytest

from local_cloud.event_filter import EventFilter, event_filter, filter_patterns
from stream_processor.contract import ALERT_OUTBOX_FILTER


def _record(event_name: str = "INSERT", **new_image: dict) -> dict:
    """A table stream record as the function gets it (the parts patterns look at)."""
    change: dict = {
        "Keys": {"id": {"N": "1"}},
        "SequenceNumber": "1",
        "StreamViewType": "NEW_IMAGE",
    }
    if new_image:
        change["NewImage"] = {"id": {"N": "1"}, **new_image}
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": change}


def _passes(pattern: dict, record: dict) -> bool:
    return EventFilter([json.dumps(pattern)]).passes(record)


def test_the_outbox_filter_takes_writes_whose_new_image_carries_an_outbox():
    # GIVEN the alert notifier's filter
    outbox = EventFilter([json.dumps(ALERT_OUTBOX_FILTER)])
    # THEN a write with an outbox passes, whatever its event name
    assert outbox.passes(_record(outbox={"S": "[]"}))
    assert outbox.passes(_record("MODIFY", outbox={"S": "[]"}))
    # AND one without, or a deletion (no new image), or an outbox of another type does not
    assert not outbox.passes(_record(seen={"N": "3"}))
    assert not outbox.passes(_record("REMOVE"))
    assert not outbox.passes(_record(outbox={"N": "1"}))


@pytest.mark.parametrize(
    ("pattern", "passing", "failing"),
    [
        # a list of exact values
        ({"eventName": ["INSERT", "MODIFY"]}, _record(), _record("REMOVE")),
        # nested objects down to a leaf
        (
            {"dynamodb": {"NewImage": {"state": {"S": ["open"]}}}},
            _record(state={"S": "open"}),
            _record(state={"S": "closed"}),
        ),
        # exists: false takes a record without the field
        (
            {"dynamodb": {"NewImage": {"lease": {"S": [{"exists": False}]}}}},
            _record(state={"S": "open"}),
            _record(lease={"S": "worker-1"}),
        ),
        # prefix
        (
            {"dynamodb": {"Keys": {"id": {"N": [{"prefix": "1"}]}}}},
            _record(),
            {**_record(), "dynamodb": {"Keys": {"id": {"N": "2"}}}},
        ),
        # anything-but
        ({"eventName": [{"anything-but": ["REMOVE"]}]}, _record("MODIFY"), _record("REMOVE")),
        # numeric, on a number in the record
        (
            {"dynamodb": {"SizeBytes": [{"numeric": [">", 100]}]}},
            {**_record(), "dynamodb": {"SizeBytes": 150}},
            {**_record(), "dynamodb": {"SizeBytes": 50}},
        ),
        # every field of a pattern must match
        (
            {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"state": {"S": ["open"]}}}},
            _record(state={"S": "open"}),
            _record("MODIFY", state={"S": "open"}),
        ),
    ],
)
def test_a_pattern_takes_what_eventbridge_would_match(pattern, passing, failing):
    assert _passes(pattern, passing)
    assert not _passes(pattern, failing)


def test_filters_are_ored_and_none_take_everything():
    # GIVEN two filters
    either = EventFilter(
        [json.dumps({"eventName": ["INSERT"]}), json.dumps({"eventName": ["REMOVE"]})]
    )
    # THEN a record matching either passes, one matching neither does not
    assert either.passes(_record()) and either.passes(_record("REMOVE"))
    assert not either.passes(_record("MODIFY"))
    # AND without filters every record passes
    assert not EventFilter([]) and EventFilter([]).passes(_record("MODIFY"))


def test_filter_criteria_as_the_api_gives_them():
    criteria = {"Filters": [{"Pattern": '{"a": [1]}'}, {"Pattern": '{"b": [2]}'}]}
    assert filter_patterns(criteria) == ('{"a": [1]}', '{"b": [2]}')
    assert filter_patterns(None) == () and filter_patterns({"Filters": []}) == ()


def test_a_pattern_lambda_would_reject_is_an_error():
    with pytest.raises(ValueError, match="invalid event pattern"):
        event_filter(('{"eventName": "INSERT"}',))
