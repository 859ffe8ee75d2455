"""A loopback proxy that makes a PostgreSQL server answer as a Redshift cluster would.

Clients connect to it as to Redshift, with `redshift_connector` (the warehouse
resource through sqlalchemy-redshift, dbt-redshift) and unchanged settings:

- TLS, which `redshift_connector` uses by default (the cluster's parameter group
  requires it): the proxy ends it with a certificate of its own, which the tests
  trust through `SSL_CERT_FILE` (see `trust_environment`);
- the startup parameters only Redshift knows (`client_protocol_version`,
  `driver_version`, `os_version`, ...), which PostgreSQL refuses (FATAL 42704),
  are dropped;
- each statement (simple or extended protocol) passes through `redshift_shim`.

Everything else, replies included, passes through unchanged. `refusing()` turns
connections away for a while: the warehouse is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local_cloud.ports import free_port
from tests.support import redshift_shim

HOST = "127.0.0.1"
#: Startup parameters `redshift_connector` sends that only Redshift accepts.
REDSHIFT_ONLY_STARTUP_PARAMETERS = frozenset(
    {
        "client_protocol_version",
        "driver_version",
        "os_version",
        "driver_discovery_version",
        "plugin_name",
        "idp_type",
        "provider_name",
    }
)
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the loopback address (its own CA) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redshift-proxy.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "proxy.crt", folder / "proxy.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _startup_without_redshift_parameters(body: bytes) -> bytes:
    """A StartupMessage body (protocol version, then name/value pairs) without the
    parameters PostgreSQL refuses."""
    version, pairs = body[:4], body[4:].split(b"\0")
    kept = b""
    for name, value in zip(pairs[0::2], pairs[1::2], strict=False):
        if name and name.decode() not in REDSHIFT_ONLY_STARTUP_PARAMETERS:
            kept += name + b"\0" + value + b"\0"
    return version + kept + b"\0"


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class RedshiftProxy:
    """Listens on a free loopback port and relays each connection to PostgreSQL."""

    def __init__(
        self,
        upstream_port: int,
        read_object: Callable[[str, str], bytes],
        upstream_host: str = HOST,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.read_object = read_object
        self.port = free_port()
        self._folder = tempfile.TemporaryDirectory(prefix="redshift-proxy-")
        self.ca_file, key_file = _certificate(Path(self._folder.name))
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(self.ca_file, key_file)
        self._refusing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> RedshiftProxy:
        """Start listening; returns self."""
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, HOST, self.port), self._loop
        ).result()
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection and remove the certificate."""

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._folder.cleanup()

    def trust_environment(self) -> dict[str, str]:
        """The environment in which clients trust the proxy's certificate (OpenSSL's
        default verify file, which `redshift_connector` loads beside Redshift's CAs)."""
        return {"SSL_CERT_FILE": str(self.ca_file)}

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Turn new connections away for the block: the warehouse cannot be reached."""
        self._refusing = True
        try:
            yield
        finally:
            self._refusing = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        relays: list[asyncio.Task[None]] = []
        try:
            if self._refusing:
                return
            startup = await self._startup(reader, writer)
            if startup is None:
                return
            up_reader, upstream = await asyncio.open_connection(*self.upstream)
            if startup[:4] == struct.pack("!i", _CANCEL_REQUEST):
                upstream.write(struct.pack("!i", len(startup) + 4) + startup)
                await upstream.drain()
                return
            body = _startup_without_redshift_parameters(startup)
            upstream.write(struct.pack("!i", len(body) + 4) + body)
            relays += [
                asyncio.create_task(self._relay_statements(reader, upstream)),
                asyncio.create_task(self._relay_replies(up_reader, writer)),
            ]
            # Until both sides are done, or one side drops the connection.
            _, pending = await asyncio.wait(relays, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is stopping: the connection just ends
        finally:
            for task in relays:
                task.cancel()
            for each in (writer, upstream):
                if each is not None:
                    each.close()

    async def _startup(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        """Read the client's first messages up to its StartupMessage (or CancelRequest),
        answering TLS and GSS requests; returns its body."""
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code == _SSL_REQUEST:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self._tls)
            elif code == _GSSENC_REQUEST:
                writer.write(b"N")
                await writer.drain()
            else:
                return body

    async def _relay_statements(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
    ) -> None:
        while True:
            header = await reader.readexactly(5)
            kind, (length,) = header[:1], struct.unpack("!i", header[1:])
            body = await reader.readexactly(length - 4)
            if kind == b"Q":  # simple query: the SQL, NUL-terminated
                sql = await self._rewritten(body[:-1].decode())
                body = sql.encode() + b"\0"
            elif kind == b"P":  # Parse: statement name, SQL, parameter types
                name, rest = body.split(b"\0", 1)
                sql_bytes, types = rest.split(b"\0", 1)
                sql = await self._rewritten(sql_bytes.decode())
                body = name + b"\0" + sql.encode() + b"\0" + types
            upstream.write(_message(kind, body))
            await upstream.drain()
            if kind == b"X":  # Terminate
                return

    async def _relay_replies(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while chunk := await up_reader.read(65536):
            writer.write(chunk)
            await writer.drain()

    async def _rewritten(self, sql: str) -> str:
        # A COPY reads S3: off the loop, so other connections go on meanwhile.
        return await asyncio.to_thread(redshift_shim.rewrite, sql, self.read_object)
