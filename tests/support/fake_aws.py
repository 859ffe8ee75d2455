"""A loopback HTTP endpoint that plays DynamoDB and S3 just enough for the stream processor.

It answers BatchWriteItem, PutItem and S3 PutObject after a fixed latency (an
in-region round trip), keeps what it was sent, and can inject the failures the
processor must survive: throttling, UnprocessedItems, 5xx, an S3 outage.
The benchmark runs it in a child process so its work does not share the GIL
with the code being timed; tests run it in a thread to inspect its state.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stream_processor.contract import DEVICE_ID, TIMESTAMP

_DYNAMODB_JSON = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class WireRequest:
    """A request exactly as it arrived: method, path, headers and body bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeAws:
    """The fake endpoint's state and fault switches; `start()` serves it on loopback."""

    def __init__(self, latency_s: float = 0.0, keep_data: bool = True) -> None:
        self.latency_s = latency_s
        self.keep_data = keep_data
        self.lock = threading.Lock()
        #: Stored items by (device_id, timestamp N text), as DynamoDB JSON.
        self.items: dict[tuple[str, str], dict] = {}
        #: Stored objects by (bucket, key).
        self.objects: dict[tuple[str, str], bytes] = {}
        self.requests: dict[str, int] = {}
        #: Every DynamoDB request as received (only when keeping data).
        self.received: list[WireRequest] = []
        # Fault switches.
        #: This many next BatchWriteItem requests fail with ProvisionedThroughputExceeded.
        self.throttle_batch_writes = 0
        #: This many next BatchWriteItem requests fail with HTTP 500.
        self.fail_batch_writes_500 = 0
        #: This many next BatchWriteItem requests fail with ValidationException (not transient).
        self.reject_batch_writes = 0
        #: device_id -> how many more times its items come back unprocessed (math.inf: always).
        self.unprocessed_devices: dict[str, float] = {}
        #: This many next BatchWriteItem answers carry a wrong x-amz-crc32 (damaged in transit).
        self.damage_batch_write_answers = 0
        #: PutObject answers 503 SlowDown while this is set.
        self.s3_unavailable = False
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        """Where boto3 should send requests (AWS_ENDPOINT_URL)."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, port: int = 0) -> FakeAws:
        """Serve on 127.0.0.1 in a background thread."""
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self, operation: str) -> int:
        """How many requests of `operation` arrived (e.g. "BatchWriteItem", "PutObject")."""
        with self.lock:
            return self.requests.get(operation, 0)

    # --- operations -------------------------------------------------------

    def batch_write_item(self, body: bytes) -> tuple[int, dict]:
        with self.lock:
            self.requests["BatchWriteItem"] = self.requests.get("BatchWriteItem", 0) + 1
            if self.throttle_batch_writes > 0:
                self.throttle_batch_writes -= 1
                return 400, _dynamodb_error(
                    "ProvisionedThroughputExceededException", "throughput exceeded"
                )
            if self.reject_batch_writes > 0:
                self.reject_batch_writes -= 1
                return 400, _dynamodb_error("ValidationException", "rejected by the test")
            if self.fail_batch_writes_500 > 0:
                self.fail_batch_writes_500 -= 1
                return 500, _dynamodb_error("InternalServerError", "internal error")
            if not self.keep_data and not self.unprocessed_devices:
                return 200, {"UnprocessedItems": {}}
            request = json.loads(body)
            unprocessed: dict[str, list] = {}
            for table, writes in request["RequestItems"].items():
                keys = set()
                for write in writes:
                    item = write["PutRequest"]["Item"]
                    key = (item[DEVICE_ID]["S"], item[TIMESTAMP]["N"])
                    if key in keys:
                        return 400, _dynamodb_error(
                            "ValidationException",
                            "Provided list of item keys contains duplicates",
                        )
                    keys.add(key)
                for write in writes:
                    item = write["PutRequest"]["Item"]
                    device = item[DEVICE_ID]["S"]
                    remaining = self.unprocessed_devices.get(device, 0)
                    if remaining > 0:
                        self.unprocessed_devices[device] = remaining - 1
                        unprocessed.setdefault(table, []).append(write)
                    elif self.keep_data:
                        self.items[(device, item[TIMESTAMP]["N"])] = item
            return 200, {"UnprocessedItems": unprocessed}

    def put_item(self, body: bytes) -> tuple[int, dict]:
        with self.lock:
            self.requests["PutItem"] = self.requests.get("PutItem", 0) + 1
            if self.keep_data:
                item = json.loads(body)["Item"]
                self.items[(item[DEVICE_ID]["S"], item[TIMESTAMP]["N"])] = item
        return 200, {}

    def put_object(self, bucket: str, key: str, body: bytes) -> int:
        with self.lock:
            self.requests["PutObject"] = self.requests.get("PutObject", 0) + 1
            if self.s3_unavailable:
                return 503
            if self.keep_data:
                self.objects[(bucket, key)] = body
        return 200


def _dynamodb_error(code: str, message: str) -> dict:
    return {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of concurrent connections must not overflow the listen backlog: the
    # kernel would drop the SYN and the client would wait a second to retry.
    request_queue_size = 256
    fake: FakeAws


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    protocol_version = "HTTP/1.1"  # keep-alive, as with the real endpoints
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for
    # the client's delayed ACK (~40 ms), which would swamp the 5 ms we mean to simulate.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the benchmark and tests print their own results."""

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, content_type: str, damaged: bool = False) -> None:
        fake = self.server.fake
        if fake.latency_s:
            time.sleep(fake.latency_s)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if content_type == _DYNAMODB_JSON:
            # DynamoDB sends the CRC32 of every answer body; clients check it.
            self.send_header("x-amz-crc32", str((zlib.crc32(body) + damaged) & 0xFFFFFFFF))
        else:
            self.send_header("ETag", '"0"')
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """DynamoDB's JSON protocol: the operation is named in X-Amz-Target."""
        body = self._body()
        operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        fake = self.server.fake
        if fake.keep_data:
            with fake.lock:
                fake.received.append(
                    WireRequest(self.command, self.path, dict(self.headers.items()), body)
                )
        damaged = False
        if operation == "BatchWriteItem":
            status, answer = fake.batch_write_item(body)
            with fake.lock:
                if fake.damage_batch_write_answers > 0:
                    fake.damage_batch_write_answers -= 1
                    damaged = True
        elif operation == "PutItem":
            status, answer = fake.put_item(body)
        else:
            status, answer = 400, _dynamodb_error("UnknownOperationException", operation)
        self._reply(status, json.dumps(answer).encode(), _DYNAMODB_JSON, damaged)

    def do_PUT(self) -> None:
        """S3 PutObject, path-style: /bucket/key."""
        body = self._body()
        bucket, _, key = unquote(urlsplit(self.path).path).lstrip("/").partition("/")
        status = self.server.fake.put_object(bucket, key, body)
        if status == 200:
            self._reply(200, b"", "application/xml")
        else:
            error = b"<Error><Code>SlowDown</Code><Message>Slow down.</Message></Error>"
            self._reply(status, error, "application/xml")


def serve_in_subprocess(latency_s: float) -> tuple[subprocess.Popen, str]:
    """Run a data-discarding fake endpoint in a child process; returns (process, url)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_aws", str(latency_s)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


if __name__ == "__main__":
    fake = FakeAws(latency_s=float(sys.argv[1]), keep_data=False).start()
    print(fake.endpoint_url, flush=True)
    threading.Event().wait()
