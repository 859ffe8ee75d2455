"""Send a request body we encoded ourselves through an ordinary botocore client.

botocore serialises BatchWriteItem by walking the service model for every
attribute value, which costs more than validating the reading. We already hold
each item as DynamoDB JSON bytes, so we hand botocore the finished body and let
it do the rest as usual: endpoint resolution, headers, SigV4 signing over the
body it actually sends, the HTTP round trip and the response parsing.

The body travels in a private keyword argument that is taken out of the call's
parameters before serialisation (`provide-client-params`), kept in the call's
request context, and swapped in after serialisation and before signing
(`before-call`).
"""

from __future__ import annotations

#: The keyword argument that carries the finished body into the client call.
BODY_PARAM = "PrebuiltBody"
_CONTEXT_KEY = "stream_processor_prebuilt_body"


def _take_body(params: dict, context: dict, **_: object) -> None:
    body = params.pop(BODY_PARAM, None)
    if body is not None:
        context[_CONTEXT_KEY] = body


def _swap_body(params: dict, context: dict, **_: object) -> None:
    body = context.get(_CONTEXT_KEY)
    if body is not None:
        params["body"] = body


def accept_prebuilt_body(client: object, operation_name: str) -> None:
    """Let `client.<operation>(..., PrebuiltBody=b"...")` send those exact bytes as the body.

    The other parameters still go through botocore (they drive endpoint
    resolution), so pass the smallest valid ones, e.g. `RequestItems={table: []}`.
    Only for JSON-protocol operations such as DynamoDB's.
    """
    events = client.meta.events
    service_id = client.meta.service_model.service_id.hyphenize()
    # unique_id makes a second registration on the same client a no-op.
    for event, hook in (("provide-client-params", _take_body), ("before-call", _swap_body)):
        name = f"{event}.{service_id}.{operation_name}"
        events.register(name, hook, unique_id=f"stream-processor-prebuilt-{name}")
