"""Send a finished JSON-protocol request (DynamoDB's) over a botocore client's connections.

A client call runs botocore's whole per-request pipeline: parameter events,
endpoint rule evaluation, serialisation, a dozen event hooks, response parsing
against the service model. For one BatchWriteItem that costs about 0.8 ms of
CPU, more than validating the 25 readings inside it, and in a 10,000-record
batch it was most of the handler's time. Our readings are already DynamoDB
JSON, so we skip the pipeline and keep only the parts that make a request
correct:

- the client's endpoint (`AWS_ENDPOINT_URL` or the regional endpoint), region
  and signing name, read once;
- botocore's SigV4 signer over exactly the bytes sent, with the client's
  credentials (refreshed the way botocore refreshes them);
- the client's HTTP session: its connection pool, timeouts, proxies and TLS;
- errors raised as the client's own exceptions, parsed by botocore's parser, and
  network failures as botocore's exceptions, so retries treat them as before.
"""

from __future__ import annotations

import json
import zlib
from urllib.parse import urlsplit

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.endpoint import convert_to_response_dict
from botocore.exceptions import ChecksumError, NoCredentialsError
from botocore.parsers import create_parser

_USER_AGENT = f"stream-processor Botocore/{botocore.__version__}"


class JsonProtocolEndpoint:
    """Posts prebuilt request bodies for one JSON-protocol client, signed with SigV4.

    Safe to share between threads, like the client it is built from.
    """

    def __init__(self, client: object) -> None:
        meta = client.meta
        model = meta.service_model
        url = meta.endpoint_url
        # An endpoint without a path gets "/" (the operations' request URI), as botocore does.
        self._url = url if urlsplit(url).path else url + "/"
        self._service_model = model
        self._signing = (model.signing_name, meta.region_name)
        self._target_prefix = model.metadata["targetPrefix"]
        self._content_type = f"application/x-amz-json-{model.metadata['jsonVersion']}"
        self._exceptions = client.exceptions
        # botocore has no public accessor for a client's credentials or HTTP session.
        self._credentials = client._get_credentials()
        self._http = client._endpoint.http_session
        self._error_parser = create_parser(model.resolved_protocol)

    def call(self, operation: str, body: bytes) -> dict:
        """POST `body` as `operation`; returns the parsed JSON answer.

        Raises the client's ClientError subclass for an error answer, botocore's
        connection errors for network failures, ChecksumError for a response
        that does not match its CRC32 header, NoCredentialsError without credentials.
        """
        if self._credentials is None:
            raise NoCredentialsError()
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={
                "Content-Type": self._content_type,
                "X-Amz-Target": f"{self._target_prefix}.{operation}",
                "User-Agent": _USER_AGENT,
            },
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), *self._signing).add_auth(request)
        response = self._http.send(request.prepare())
        content = response.content
        expected_crc = response.headers.get("x-amz-crc32")
        if expected_crc is not None and zlib.crc32(content) != int(expected_crc):
            # A damaged answer may hide UnprocessedItems: treat it as not answered.
            raise ChecksumError(
                checksum_type="crc32",
                expected_checksum=expected_crc,
                actual_checksum=zlib.crc32(content),
            )
        if response.status_code < 300:
            return json.loads(content) if content else {}
        self._raise_error(operation, response)

    def _raise_error(self, operation: str, response: object) -> None:
        operation_model = self._service_model.operation_model(operation)
        parsed = self._error_parser.parse(
            convert_to_response_dict(response, operation_model), operation_model.output_shape
        )
        raise self._exceptions.from_code(parsed["Error"]["Code"])(parsed, operation)
