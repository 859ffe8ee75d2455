"""BatchWriteItem of items already encoded as DynamoDB JSON, through botocore's public pipeline.

The readings leave `readings.classify` as DynamoDB JSON text. Handing botocore
the same items as Python dicts would make its serialiser walk the service
model for every attribute of every item (about 35 us per item, most of a
25-item request's CPU) to produce text we already have. Instead the writer
calls `client.batch_write_item(...)` like any caller, with each item wrapped in
an `EncodedItem`, and three handlers on the client's documented events
(https://docs.aws.amazon.com/boto3/latest/guide/events.html) splice the text in:

1. `before-parameter-build`, registered last at the least specific level, so
   it runs after every other handler of the event: the Stubber's parameter
   check and any tracing or logging hook see the real parameters. When every
   item is an `EncodedItem` and nothing but `RequestItems` is asked for, the
   body is joined from the items' text and kept in the call's context, and
   `RequestItems` becomes `{table: []}`: the serialiser has nothing left to
   walk, and the table names stay for endpoint rules and tracing.
2. `before-call`, as its first handler, puts that body in the request dict,
   before compression, checksums and signing: every other `before-call`
   handler, the signature, `before-sign`, `before-send` (where moto's
   `mock_aws` answers) and the wire see exactly the bytes that are sent.
3. `after-call.dynamodb.BatchWriteItem` checks DynamoDB's `x-amz-crc32` of the
   answer. botocore checks it only to decide on a retry, and ours are off: a
   damaged answer could hide `UnprocessedItems`, so it raises ChecksumError and
   the writer's own retry sends the request again.

Everything else is botocore's: endpoint resolution, credentials and their
refresh, SigV4, the HTTP session, response parsing, errors as the client's
exceptions. Any tool that hooks the client or botocore (moto, Stubber,
OpenTelemetry, X-Ray, Powertools' user agent) sees every request. A client
without these handlers still sends correct requests: the serialiser reads an
`EncodedItem` as the mapping it is, only more slowly.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ChecksumError

#: Where the body waits between the two request events (botocore's per-call context).
_BODY_KEY = "stream_processor.encoded_body"
_HANDLER_ID = "stream-processor-encoded-batch-write"
_OPERATION = "dynamodb.BatchWriteItem"
_PUT_OPEN = b'{"PutRequest":{"Item":'
_PUT_CLOSE = b"}}"


class EncodedItem(Mapping[str, Any]):
    """A DynamoDB item (attribute name to attribute value) held as its DynamoDB JSON text.

    It reads as the mapping it encodes, so anything inspecting the call's
    parameters (a Stubber's `expected_params`, a tracing hook) sees the item; the
    text is decoded only on the first such read, never on the fast path.
    """

    __slots__ = ("_decoded", "json")

    def __init__(self, json_text: bytes) -> None:
        self.json = json_text
        self._decoded: dict[str, Any] | None = None

    def _mapping(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = json.loads(self.json)
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        return self._mapping()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"EncodedItem({self._mapping()!r})"


def _encoded_put(write: object) -> EncodedItem | None:
    """The item of `{"PutRequest": {"Item": EncodedItem}}`, else None."""
    if type(write) is not dict or len(write) != 1:
        return None
    put = write.get("PutRequest")
    if type(put) is not dict or len(put) != 1:
        return None
    item = put.get("Item")
    return item if type(item) is EncodedItem else None


def _carry_encoded_body(
    params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    """before-parameter-build: join the body from encoded items; leave botocore nothing to walk."""
    if model.name != "BatchWriteItem":
        return
    request_items = params.get("RequestItems")
    if len(params) != 1 or not isinstance(request_items, Mapping):
        return  # something we did not build: botocore serialises it as usual
    tables = []
    for table, writes in request_items.items():
        items = []
        for write in writes:
            item = _encoded_put(write)
            if item is None:
                return
            items.append(_PUT_OPEN + item.json + _PUT_CLOSE)
        tables.append(json.dumps(table).encode() + b":[" + b",".join(items) + b"]")
    context[_BODY_KEY] = b'{"RequestItems":{' + b",".join(tables) + b"}}"
    params["RequestItems"] = {table: [] for table in request_items}


def _send_encoded_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-call: the joined body replaces the near-empty one botocore serialised.

    Only a call whose parameters `_carry_encoded_body` took has a body waiting.
    """
    body = context.pop(_BODY_KEY, None)
    if body is not None:
        params["body"] = body


def _check_crc32(http_response: Any, **_: Any) -> None:
    """after-call: refuse an answer whose body does not match DynamoDB's CRC32 header."""
    expected = http_response.headers.get("x-amz-crc32")
    if expected is None:
        return  # not from DynamoDB's wire (a Stubber answer), or a proxy that drops it
    actual = zlib.crc32(http_response.content)
    if actual != int(expected):
        raise ChecksumError(
            checksum_type="crc32", expected_checksum=expected, actual_checksum=actual
        )


def install(client: Any) -> None:
    """Register the three handlers on a DynamoDB client's events (once per client)."""
    events = client.meta.events
    # botocore calls handlers of wildcard names first, then from the most specific name
    # to the least: the bare name, registered last, is the last handler of the event,
    # and `*.*` registered first is the first.
    events.register_last(
        "before-parameter-build", _carry_encoded_body, unique_id=f"{_HANDLER_ID}-params"
    )
    events.register_first("before-call.*.*", _send_encoded_body, unique_id=f"{_HANDLER_ID}-body")
    events.register(f"after-call.{_OPERATION}", _check_crc32, unique_id=f"{_HANDLER_ID}-crc32")
