"""The outgoing HTTP client: every method against a live Cello server,
headers, JSON and raw bodies, query parameters, redirects not followed,
charsets; pooled connections; timeouts, refused connections, broken and
oversized answers, cancellation, closing; HTTPS with a private CA; and the
client used inside a handler, through both doors."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import cello
from cello import AsyncClient, HttpResponse
from cello.client import (
    DEFAULT_MAX_RESPONSE_SIZE,
    ClientConnectionError,
    ClientError,
    ClientTimeout,
    InvalidRequest,
    ProtocolError,
    ResponseTooLarge,
)
from tests.live import LiveServer, door_client


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with LiveServer("tests.apps.client_app:upstream", "--env", "production") as live:
        yield live.url


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


async def using(call: Callable[[AsyncClient], Awaitable[Any]], **options: Any) -> Any:
    async with AsyncClient(**options) as client:
        return await call(client)


class RawServer:
    """A TCP server in a thread whose connections are handled by ``handle``
    (a blocking function of the socket), for answers no HTTP server gives.
    Counts the connections it accepted."""

    def __init__(self, handle: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handle = handle
        self.tls = tls
        self.connections = 0
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                self.handle(conn)
        except (OSError, ssl.SSLError):
            pass

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.listener.close()
        for conn in self.sockets:
            try:
                conn.close()
            except OSError:
                pass


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answering(*responses: bytes) -> Callable[[socket.socket], None]:
    """Answers successive requests on one connection with ``responses``."""

    def handle(conn: socket.socket) -> None:
        for response in responses:
            if not read_head(conn):
                return
            conn.sendall(response)
        conn.close()

    return handle


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(handle: Callable[[socket.socket], None], **options: Any) -> RawServer:
        server = RawServer(handle, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


# -- requests and responses ----------------------------------------------------------


def test_get_returns_status_headers_and_json(upstream):
    response = run(using(lambda c: c.get(f"{upstream}/echo", headers={"X-One": "1"})))
    assert isinstance(response, HttpResponse)
    assert response.status == response.status_code == 200
    assert response.reason == "OK"
    assert response.is_success
    assert response.headers["content-type"] == "application/json"
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["method"] == "GET"
    assert body["headers"]["x-one"] == "1"
    assert body["headers"]["user-agent"] == f"cello/{cello.__version__}"
    assert response.text == response.content.decode()
    assert response.url == f"{upstream}/echo"
    assert repr(response) == "<HttpResponse [200]>"


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_json_bodies(upstream, method):
    response = run(using(lambda c: getattr(c, method)(f"{upstream}/echo", json={"a": [1, "é"]})))
    body = response.json()
    assert body["method"] == method.upper()
    assert body["headers"]["content-type"] == "application/json"
    assert body["body"] == '{"a":[1,"é"]}'


def test_raw_content_and_positional_arguments(upstream):
    async def call(client: AsyncClient) -> list[Any]:
        as_bytes = await client.post(
            f"{upstream}/echo", None, b"raw", {"Content-Type": "text/plain"}
        )
        as_text = await client.put(f"{upstream}/echo", content="tèxt")
        deleted = await client.delete(f"{upstream}/echo", {"X-Why": "gone"})
        return [as_bytes.json(), as_text.json(), deleted.json()]

    as_bytes, as_text, deleted = run(using(call))
    assert as_bytes["body"] == "raw"
    assert as_bytes["headers"]["content-type"] == "text/plain"
    assert as_text["body"] == "tèxt"
    assert "content-type" not in as_text["headers"]
    assert deleted["method"] == "DELETE"
    assert deleted["headers"]["x-why"] == "gone"


def test_query_parameters_and_client_headers(upstream):
    async def call(client: AsyncClient) -> Any:
        response = await client.get(
            f"{upstream}/echo?a=1", params={"b": "x y", "c": ["1", "2"]}, headers={"X-B": "mine"}
        )
        return response.json()

    body = run(using(call, headers={"X-A": "client", "X-B": "client", "User-Agent": "me/1"}))
    assert body["query"] == "a=1&b=x+y&c=1&c=2"
    assert body["headers"]["x-a"] == "client"
    assert body["headers"]["x-b"] == "mine"
    assert body["headers"]["user-agent"] == "me/1"


def test_head_and_options(upstream):
    async def call(client: AsyncClient) -> tuple[HttpResponse, HttpResponse]:
        return await client.head(f"{upstream}/echo"), await client.options(f"{upstream}/echo")

    head, options = run(using(call))
    assert head.status == 200
    assert head.content == b""
    assert options.status in (204, 405)


def test_a_head_answer_s_length_does_not_count_against_the_limit(upstream):
    response = run(using(lambda c: c.head(f"{upstream}/bytes/2048"), max_response_size=1024))
    assert response.status == 200
    assert response.headers["content-length"] == "2048"
    assert response.content == b""


def test_redirects_are_returned_not_followed(upstream):
    response = run(using(lambda c: c.get(f"{upstream}/redirect")))
    assert response.status == 302
    assert response.headers["location"] == "/echo"
    assert not response.is_success


def test_error_statuses_are_responses_not_exceptions(upstream):
    response = run(using(lambda c: c.get(f"{upstream}/status/503")))
    assert response.status == 503
    assert response.json() == {"code": 503}


def test_text_uses_the_declared_charset(upstream):
    response = run(using(lambda c: c.get(f"{upstream}/latin1")))
    assert response.content == "café".encode("latin-1")
    assert response.text == "café"


def test_text_and_json_of_odd_bodies(raw_server):
    server = raw_server(
        answering(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=nonsense\r\n"
            b"Content-Length: 3\r\n\r\n\xff\xfeA",
        )
    )
    response = run(using(lambda c: c.get(server.url())))
    assert response.text == "\ufffd\ufffdA"
    with pytest.raises(ValueError):
        response.json()


def test_a_big_body_within_the_limit_arrives_whole(upstream):
    size = 3 * 1024 * 1024
    response = run(using(lambda c: c.get(f"{upstream}/bytes/{size}")))
    assert len(response.content) == size


# -- connections ----------------------------------------------------------------------


def test_connections_are_pooled(raw_server):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = raw_server(answering(ok, ok, ok))

    async def call(client: AsyncClient) -> list[int]:
        return [(await client.get(server.url(f"/{i}"))).status for i in range(3)]

    assert run(using(call)) == [200, 200, 200]
    assert server.connections == 1


def test_a_server_that_never_answers_times_out(raw_server):
    server = raw_server(lambda conn: (read_head(conn), threading.Event().wait(30)))
    with pytest.raises(ClientTimeout) as caught:
        run(using(lambda c: c.get(server.url("/slow")), timeout=0.3))
    assert isinstance(caught.value, TimeoutError)
    assert str(caught.value) == f"no complete response from {server.url('/slow')} within 0.3 s"


def test_a_per_request_timeout_overrides_the_client_s(raw_server):
    server = raw_server(lambda conn: (read_head(conn), threading.Event().wait(30)))
    with pytest.raises(ClientTimeout, match=r"within 0\.2 s"):
        run(using(lambda c: c.get(server.url(), timeout=0.2), timeout=60))


def test_a_refused_connection(upstream):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(ClientConnectionError) as caught:
        run(using(lambda c: c.get(f"http://127.0.0.1:{port}/")))
    assert isinstance(caught.value, ConnectionError)
    assert "Connection refused" in str(caught.value)


def test_a_connection_closed_before_the_answer(raw_server):
    server = raw_server(lambda conn: (read_head(conn), conn.close()))
    with pytest.raises(ClientConnectionError):
        run(using(lambda c: c.get(server.url())))


def test_an_answer_that_is_not_http(raw_server):
    server = raw_server(answering(b"SSH-2.0-OpenSSH\r\n\r\n"))
    with pytest.raises(ProtocolError):
        run(using(lambda c: c.get(server.url())))


def test_a_body_over_the_limit_is_refused(upstream, raw_server):
    with pytest.raises(ResponseTooLarge) as caught:
        run(using(lambda c: c.get(f"{upstream}/bytes/2048"), max_response_size=1024))
    assert str(caught.value) == ("the response body is larger than max_response_size (1024 bytes)")
    # Without a Content-Length the count stops the reading.
    endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"x" * 1024

    def flood(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(endless)
        chunk = b"\r\n400\r\n" + b"x" * 1024
        try:
            for _ in range(10_000):
                conn.sendall(chunk)
        except OSError:
            pass

    server = raw_server(flood)
    with pytest.raises(ResponseTooLarge):
        run(using(lambda c: c.get(server.url()), max_response_size=64 * 1024))
    assert DEFAULT_MAX_RESPONSE_SIZE == 10 * 1024 * 1024


def test_cancelling_the_caller_stops_the_request(raw_server):
    server = raw_server(lambda conn: (read_head(conn), threading.Event().wait(30)))

    async def main() -> None:
        async with AsyncClient() as client:
            task = asyncio.create_task(client.get(server.url()))
            while server.connections == 0:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.get(server.url()), 0.2)

    run(main())


def test_a_closed_client_refuses_requests(upstream):
    async def main() -> None:
        client = AsyncClient()
        assert not client.is_closed
        await client.aclose()
        assert client.is_closed
        assert "closed" in repr(client)
        with pytest.raises(RuntimeError, match="this AsyncClient is closed"):
            await client.get(f"{upstream}/echo")

    run(main())


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "the scheme must be http or https"),
        ("/relative", "it must start with http:// or https://"),
        ("http://exa mple.com/", "invalid URL"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        run(using(lambda c: c.get(url)))
    assert isinstance(caught.value, ValueError)


def test_bad_requests(upstream):
    url = f"{upstream}/echo"
    for call, message in [
        (lambda c: c.post(url, json={}, content=b"x"), "json= or content=, not both"),
        (lambda c: c.get(url, headers={"Bad Name": "x"}), "invalid header name"),
        (lambda c: c.get(url, headers={"X": "a\nb"}), "invalid value for header x"),
        (lambda c: c.get(url, headers={"X": 1}), "must be strings"),
        (lambda c: c.get(url, headers=["x"]), "must be a dict or"),
        (lambda c: c.post(url, content=123), "content must be str or bytes"),
        (lambda c: c.request("NOT A METHOD", url), "invalid HTTP method"),
        (lambda c: c.get(url, timeout=-1), "timeout must be a positive number"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            run(using(call))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout must be a positive number of seconds"),
        ({"timeout": "5"}, "timeout must be a number of seconds"),
        ({"max_response_size": 0}, "max_response_size must be positive"),
        ({"max_response_size": 1.5}, "max_response_size must be a number of bytes"),
        ({"verify": False}, "verify=False is not supported"),
        ({"verify": 3}, "verify must be True or a CA file path"),
        ({"verify": "/no/such/ca.pem"}, "cannot read the CA file"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        AsyncClient(**options)


def test_exports():
    assert cello.AsyncClient is AsyncClient
    assert cello.HttpResponse is HttpResponse
    assert {"AsyncClient", "HttpResponse"} <= set(cello.__all__)
    assert issubclass(ClientTimeout, ClientError)
    from cello.testing import AsyncClient as TestingAsyncClient
    from cello.testing import AsyncTestClient

    assert TestingAsyncClient is AsyncTestClient


# -- HTTPS ---------------------------------------------------------------------------------


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 / localhost that it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cello Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "cert.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _certificates(tmp_path_factory.mktemp("tls"))


def _tls_server(raw_server, tls_files) -> RawServer:
    _, cert_file, key_file = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    secret = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"
    return raw_server(answering(secret, secret), tls=context)


def test_https_with_a_trusted_ca_file(raw_server, tls_files):
    server = _tls_server(raw_server, tls_files)
    ca_file = tls_files[0]

    async def call(client: AsyncClient) -> list[bytes]:
        first = await client.get(server.url("/", scheme="https"))
        second = await client.get(server.url("/", scheme="https", host="localhost"))
        return [first.content, second.content]

    assert run(using(call, verify=ca_file)) == [b"secret", b"secret"]
    assert run(using(call, verify=str(ca_file))) == [b"secret", b"secret"]


def test_https_refuses_a_certificate_it_does_not_trust(raw_server, tls_files):
    server = _tls_server(raw_server, tls_files)
    with pytest.raises(ClientConnectionError, match="certificate"):
        run(using(lambda c: c.get(server.url("/", scheme="https"))))


def test_https_refuses_a_certificate_for_another_name(raw_server, tls_files, tmp_path):
    other_ca, _, _ = _certificates(tmp_path)
    server = _tls_server(raw_server, tls_files)
    with pytest.raises(ClientConnectionError, match="certificate"):
        run(using(lambda c: c.get(server.url("/", scheme="https")), verify=other_ca))


def test_a_ca_file_without_certificates(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificates here\n")
    with pytest.raises(ValueError, match="holds no certificate"):
        AsyncClient(verify=empty)


# -- inside a handler, through both doors --------------------------------------------------


@pytest.fixture(scope="module", params=["native", "asgi"])
def proxy(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "tests.apps.client_app:proxy", "--env", "production")


def test_a_handler_calls_out(proxy, upstream):
    response = proxy.get("/fetch", params={"url": f"{upstream}/echo"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200
    assert body["upstream"]["method"] == "POST"
    assert body["upstream"]["body"] == '{"via":"proxy"}'
    assert body["upstream"]["headers"]["x-trace"] == "t1"


def test_a_handler_sees_client_errors(proxy, upstream):
    response = proxy.get(
        "/fetch", params={"url": f"{upstream}/bytes/4096", "max": "1024", "method": "GET"}
    )
    assert response.status_code == 502
    assert response.json() == {"error": "ResponseTooLarge"}


def test_the_program_can_end_right_after_an_answer():
    # The answer's thread still holds on to the interpreter for a moment
    # after settling the future; exit must wait for it instead of aborting
    # ("PyGILState_Release: thread state must be current").
    import subprocess
    import sys

    script = (
        "import asyncio, socket\n"
        "from cello import AsyncClient\n"
        "s = socket.create_server(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "async def main():\n"
        "    async with AsyncClient() as c:\n"
        "        try:\n"
        "            await c.get(f'http://127.0.0.1:{port}/')\n"
        "        except ConnectionError:\n"
        "            print('refused')\n"
        "asyncio.run(main())\n"
    )
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "refused\n", "")
