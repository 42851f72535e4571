"""A small HTTP/3 client for the tests, on aioquic, and the certificates the
HTTP/3 servers under test use (made with ``cryptography``)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Certs:
    """A CA and a certificate it signed for localhost and 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Certs:
    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Cello test CA"))
        .issuer_name(name("Cello test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # Python 3.13's default context checks X.509 strictly: the leaf must
        # name its issuer's key.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certs(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    certs.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certs


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    # Set when the server reset the stream instead of ending it.
    reset: int | None = None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class _H3Connection(H3Connection):
    """aioquic's HTTP/3 connection, told which requests were HEADs: it
    checks every response body against its content-length, but a HEAD
    response has the length of the GET's body and no body (RFC 9110 §9.3.2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_streams: set[int] = set()

    def _check_content_length(self, stream: Any) -> None:
        if stream.stream_id not in self.head_streams:
            super()._check_content_length(stream)


@dataclass
class _Stream:
    events: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


class H3Client(QuicConnectionProtocol):
    """One QUIC connection speaking HTTP/3: requests on its streams, and
    what ended the connection (``terminated``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = _H3Connection(self._quic)
        self._streams: dict[int, _Stream] = {}
        self.terminated: asyncio.Future[ConnectionTerminated] = (
            asyncio.get_running_loop().create_future()
        )

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            if not self.terminated.done():
                self.terminated.set_result(event)
            for stream in self._streams.values():
                stream.events.put_nowait(event)
            return
        if isinstance(event, StreamReset) and event.stream_id in self._streams:
            self._streams[event.stream_id].events.put_nowait(event)
            return
        for h3_event in self._http.handle_event(event):
            stream = self._streams.get(getattr(h3_event, "stream_id", -1))
            if stream is not None:
                stream.events.put_nowait(h3_event)

    def open(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        authority: str = "localhost",
    ) -> int:
        """Sends a request head (and its whole body); returns the stream id."""
        stream_id = self._quic.get_next_available_stream_id()
        self._streams[stream_id] = _Stream()
        if method == "HEAD":
            self._http.head_streams.add(stream_id)
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
        ] + [(k.encode(), v.encode()) for k, v in headers or []]
        self._http.send_headers(stream_id, head, end_stream=body is None)
        if body is not None:
            self._http.send_data(stream_id, body, end_stream=True)
        self.transmit()
        return stream_id

    async def events(self, stream_id: int) -> AsyncIterator[Any]:
        """The stream's events: headers, data, a reset or the connection's end."""
        queue = self._streams[stream_id].events
        while True:
            event = await queue.get()
            yield event
            if isinstance(event, StreamReset | ConnectionTerminated):
                return
            if getattr(event, "stream_ended", False):
                return

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        timeout: float = 10,
    ) -> Response:
        async def collect() -> Response:
            stream_id = self.open(method, path, headers, body)
            response = Response(0, [])
            chunks = []
            async for event in self.events(stream_id):
                if isinstance(event, HeadersReceived):
                    for k, v in event.headers:
                        if k == b":status":
                            response.status = int(v)
                        else:
                            response.headers.append((k.decode(), v.decode()))
                elif isinstance(event, DataReceived):
                    chunks.append(event.data)
                elif isinstance(event, StreamReset):
                    response.reset = event.error_code
                elif isinstance(event, ConnectionTerminated):
                    raise ConnectionError(f"connection closed: {event.reason_phrase}")
            response.body = b"".join(chunks)
            return response

        return await asyncio.wait_for(collect(), timeout)


@asynccontextmanager
async def h3_connect(
    port: int,
    ca: Path,
    host: str = "127.0.0.1",
    session_ticket_handler: Any = None,
    wait_connected: bool = True,
    **config: Any,
) -> AsyncIterator[H3Client]:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, server_name="localhost", **config
    )
    configuration.load_verify_locations(str(ca))
    async with connect(
        host,
        port,
        configuration=configuration,
        create_protocol=H3Client,
        session_ticket_handler=session_ticket_handler,
        wait_connected=wait_connected,
    ) as client:
        assert isinstance(client, H3Client)
        yield client


def get(port: int, ca: Path, path: str, **kwargs: Any) -> Response:
    """One request on a connection of its own, from synchronous code."""

    async def run() -> Response:
        async with h3_connect(port, ca) as client:
            return await client.request(kwargs.pop("method", "GET"), path, **kwargs)

    return asyncio.run(asyncio.wait_for(run(), 20))
