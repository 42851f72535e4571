"""HTTPS and HTTP/2 on the native server (door 1 and door 3), with real
clients: httpx (HTTP/1.1 and h2), curl, h2load, the h2 library for the
frames themselves, and websockets for wss. Certificates are minted per run
with trustme."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h2.events
import h2.exceptions
import httpx
import pytest
import trustme

from tests.live import ROOT, LiveServer

APP = "tests.apps.tls:app"


class Certs:
    """A server certificate for 127.0.0.1/localhost from one CA, a client
    certificate from another, and a stranger CA nobody trusts."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = trustme.CA()
        self.client_ca = trustme.CA()
        self.stranger_ca = trustme.CA()
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert = directory / "cert.pem"
        self.key = directory / "key.pem"
        server.cert_chain_pems[0].write_to_path(str(self.cert))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(self.cert), append=True)
        server.private_key_pem.write_to_path(str(self.key))
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.client_ca_file = directory / "client-ca.pem"
        self.client_ca.cert_pem.write_to_path(str(self.client_ca_file))
        self.client = self.client_ca.issue_cert("client@example.com")
        self.client_file = directory / "client.pem"
        self.client.private_key_and_cert_chain_pem.write_to_path(str(self.client_file))
        self.client_cert_file = directory / "client-cert.pem"
        self.client.cert_chain_pems[0].write_to_path(str(self.client_cert_file))
        self.client_key_file = directory / "client-key.pem"
        self.client.private_key_pem.write_to_path(str(self.client_key_file))
        stranger = self.stranger_ca.issue_cert("intruder@example.com")
        self.stranger_file = directory / "stranger.pem"
        stranger.private_key_and_cert_chain_pem.write_to_path(str(self.stranger_file))

    def context(self, client_cert: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert is not None:
            ctx.load_cert_chain(str(client_cert))
        return ctx

    def flags(self, *extra: str) -> tuple[str, ...]:
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key), *extra)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https(certs: Certs) -> Iterator[LiveServer]:
    """HTTPS with HTTP/2, client certificates optional (checked against the client CA)."""
    flags = certs.flags("--http2", "--tls-ca", str(certs.client_ca_file), "--no-logs")
    with LiveServer(APP, *flags) as live:
        yield live


@pytest.fixture(scope="module")
def h2c() -> Iterator[LiveServer]:
    """Cleartext with HTTP/2 by prior knowledge."""
    with LiveServer(APP, "--http2", "--no-logs") as live:
        yield live


def test_the_startup_line_says_https(https: LiveServer):
    assert https.url.startswith("https://127.0.0.1:")


def test_https_http1(https: LiveServer, certs: Certs):
    with httpx.Client(verify=certs.context(), http2=False) as client:
        response = client.get(https.url + "/?q=1")
    assert response.http_version == "HTTP/1.1"
    body = response.json()
    assert body["scheme"] == "https"
    assert body["url"] == f"{https.url}/?q=1"
    assert body["http_version"] == "1.1"
    assert body["is_secure"] is True
    assert body["client_cert"] is None
    assert body["tls"]["client_cert_chain"] == []
    assert body["tls"]["tls_version"] == 0x0304
    assert body["tls"]["cipher_suite"] > 0


def test_https_http2_by_alpn(https: LiveServer, certs: Certs):
    with httpx.Client(verify=certs.context(), http2=True) as client:
        responses = [client.get(https.url + "/") for _ in range(3)]
        echoed = client.post(https.url + "/echo", content=b"a" * 200_000)
        big = client.get(https.url + "/big")
        streamed = client.get(https.url + "/stream")
    for response in responses:
        assert response.http_version == "HTTP/2"
        assert response.json()["http_version"] == "2"
        assert response.json()["scheme"] == "https"
        # `:authority` stands in for the Host header.
        assert response.json()["url"] == https.url + "/"
    assert echoed.content == b"a" * 200_000
    assert big.content == b"x" * 3_000_000
    assert streamed.text == "".join(f"chunk {i}\n" for i in range(5))


def test_tls_12_when_the_client_offers_only_that(https: LiveServer, certs: Certs):
    ctx = certs.context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=ctx) as client:
        body = client.get(https.url + "/").json()
    assert body["tls"]["tls_version"] == 0x0303


def test_a_mounted_asgi_app_sees_https_h2_and_the_tls_extension(https: LiveServer, certs: Certs):
    ctx = certs.context(certs.client_file)
    with httpx.Client(verify=ctx, http2=True) as client:
        response = client.get(https.url + "/asgi/scope")
    assert response.http_version == "HTTP/2"
    scope = response.json()
    assert scope["scheme"] == "https"
    assert scope["http_version"] == "2"
    assert scope["url"].startswith("https://")
    chain = scope["tls"]["client_cert_chain"]
    assert len(chain) >= 1
    assert chain[0].strip() == certs.client.cert_chain_pems[0].bytes().decode().strip()


def test_a_client_certificate_reaches_the_handler(https: LiveServer, certs: Certs):
    with httpx.Client(verify=certs.context(certs.client_file)) as client:
        body = client.get(https.url + "/").json()
    expected = certs.client.cert_chain_pems[0].bytes().decode()
    assert body["client_cert"].strip() == expected.strip()
    assert body["tls"]["client_cert_chain"][0].strip() == expected.strip()


def test_a_client_certificate_from_an_unknown_ca_is_refused(https: LiveServer, certs: Certs):
    with pytest.raises(httpx.TransportError):
        with httpx.Client(verify=certs.context(certs.stranger_file)) as client:
            client.get(https.url + "/")
    # The server carries on.
    with httpx.Client(verify=certs.context()) as client:
        assert client.get(https.url + "/").status_code == 200


def test_a_server_the_client_does_not_trust_fails_its_handshake(https: LiveServer, certs: Certs):
    stranger = ssl.create_default_context()  # the system roots: not our CA
    with pytest.raises(httpx.ConnectError):
        httpx.get(https.url + "/", verify=stranger)


def test_plain_http_to_the_tls_port_is_closed_and_the_server_carries_on(
    https: LiveServer, certs: Certs
):
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert not received.startswith(b"HTTP/1.1 200")
    with httpx.Client(verify=certs.context()) as client:
        assert client.get(https.url + "/").status_code == 200


def test_h2c_prior_knowledge(h2c: LiveServer):
    transport = httpx.HTTPTransport(http2=True, http1=False)
    with httpx.Client(transport=transport) as client:
        response = client.get(h2c.url + "/")
        echoed = client.post(h2c.url + "/echo", content=b"b" * 100_000)
        scope = client.get(h2c.url + "/asgi/scope").json()
    assert response.http_version == "HTTP/2"
    body = response.json()
    assert body["http_version"] == "2"
    assert body["scheme"] == "http"
    assert body["tls"] is None
    assert echoed.content == b"b" * 100_000
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "http"
    assert scope["tls"] is None


def test_http1_still_works_on_an_h2c_server(h2c: LiveServer):
    with httpx.Client() as client:
        for path in ("/", "/"):
            response = client.get(h2c.url + path)
            assert response.http_version == "HTTP/1.1"
            assert response.json()["http_version"] == "1.1"
        # Methods starting like the preface ("P...") are not mistaken for it.
        assert client.post(h2c.url + "/echo", content=b"PRI").content == b"PRI"


def test_without_http2_an_https_server_speaks_http1_only(certs: Certs):
    with LiveServer(APP, *certs.flags("--no-logs")) as live:
        with httpx.Client(verify=certs.context(), http2=True) as client:
            response = client.get(live.url + "/")
    assert response.http_version == "HTTP/1.1"


def _h2_connection(port: int):
    import h2.config
    import h2.connection

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _events(sock: socket.socket, conn, until) -> list:
    seen: list = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        try:
            seen.extend(conn.receive_data(data))
        except h2.exceptions.ProtocolError:
            # Frames after a GOAWAY (hyper pings after its graceful one):
            # the connection was closed by the server.
            seen.append(h2.events.ConnectionTerminated())
            break
        if until(seen):
            break
        try:
            sock.sendall(conn.data_to_send())
        except OSError:  # the server closed after what it sent
            break
    return seen


def test_http2_settings_follow_http2config(h2c: LiveServer):
    import h2.events
    import h2.settings

    sock, conn = _h2_connection(h2c.port)
    with sock:
        events = _events(
            sock,
            conn,
            lambda seen: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in seen),
        )
    changed = next(e for e in events if isinstance(e, h2.events.RemoteSettingsChanged))
    settings = {k: v.new_value for k, v in changed.changed_settings.items()}
    assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 100
    assert settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 1_048_576
    assert settings.get(h2.settings.SettingCodes.ENABLE_PUSH, 0) == 0


def test_rapid_reset_closes_the_connection(h2c: LiveServer):
    """CVE-2023-44487: a client that opens and cancels streams faster than
    they are served is sent GOAWAY, and the server carries on."""
    import h2.events

    sock, conn = _h2_connection(h2c.port)
    with sock:
        _events(
            sock,
            conn,
            lambda seen: (
                any(isinstance(e, h2.events.SettingsAcknowledged) for e in seen) or bool(seen)
            ),
        )
        headers = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
        for _ in range(400):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, headers, end_stream=True)
            conn.reset_stream(stream)
        sock.sendall(conn.data_to_send())
        events = _events(
            sock,
            conn,
            lambda seen: any(isinstance(e, h2.events.ConnectionTerminated) for e in seen),
        )
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    transport = httpx.HTTPTransport(http2=True, http1=False)
    with httpx.Client(transport=transport) as client:
        assert client.get(h2c.url + "/").status_code == 200


def test_a_stop_sends_goaway_to_an_open_http2_connection():
    import h2.events

    with LiveServer(APP, "--http2", "--no-logs") as live:
        sock, conn = _h2_connection(live.port)
        with sock:
            _events(sock, conn, bool)
            live.signal(signal.SIGINT)
            events = _events(
                sock,
                conn,
                lambda seen: any(isinstance(e, h2.events.ConnectionTerminated) for e in seen),
            )
        assert live.wait(30) == 0
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)


def test_a_client_that_never_says_hello_is_cut_off(certs: Certs):
    env = {"TLS_TEST_READ_HEADER": "0.5"}
    with LiveServer(APP, *certs.flags("--no-logs"), env=env) as live:
        with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
            assert sock.recv(1) == b""  # closed by the server, not our timeout
        with httpx.Client(verify=certs.context()) as client:
            assert client.get(live.url + "/").status_code == 200


def test_wss(https: LiveServer, certs: Certs):
    from websockets.sync.client import connect

    url = https.url.replace("https://", "wss://") + "/ws"
    with connect(url, ssl=certs.context()) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo: hi"


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_curl_http2_over_tls_with_a_client_certificate(https: LiveServer, certs: Certs):
    result = subprocess.run(
        ["curl", "-sS", "-i", "--http2", "--cacert", str(certs.ca_file),
         "--cert", str(certs.client_cert_file), "--key", str(certs.client_key_file),
         https.url + "/"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/2 200"), result.stdout
    body = json.loads(result.stdout.split("\n\n", 1)[1])  # text mode: \r\n read as \n
    assert body["client_cert"] is not None


@needs_curl
def test_curl_http2_prior_knowledge(h2c: LiveServer):
    result = subprocess.run(
        ["curl", "-sS", "-i", "--http2-prior-knowledge", h2c.url + "/"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/2 200"), result.stdout


@needs_curl
def test_curl_refuses_a_server_from_an_unknown_ca(https: LiveServer, certs: Certs):
    other = certs.dir / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(other), https.url + "/"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 60, result.stderr  # peer certificate cannot be authenticated


@pytest.mark.skipif(
    shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed"
)
def test_h2load_64_streams(https: LiveServer, certs: Certs):
    result = subprocess.run(
        ["h2load", "-n", "640", "-c", "2", "-m", "64", https.url + "/"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "640 succeeded, 0 failed" in result.stdout, result.stdout + result.stderr


def test_client_certificates_required(certs: Certs):
    flags = certs.flags(
        "--http2", "--tls-ca", str(certs.client_ca_file), "--tls-require-client-cert", "--no-logs"
    )
    with LiveServer(APP, *flags) as live:
        with pytest.raises(httpx.TransportError):
            with httpx.Client(verify=certs.context()) as client:
                client.get(live.url + "/")
        with httpx.Client(verify=certs.context(certs.client_file), http2=True) as client:
            response = client.get(live.url + "/")
        assert response.status_code == 200
        assert response.json()["client_cert"] is not None


def _served_cert(port: int, certs: Certs) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with certs.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_sighup_reloads_the_certificate_and_keeps_open_connections(tmp_path: Path):
    certs = Certs(tmp_path)
    with LiveServer(APP, *certs.flags("--http2", "--no-logs")) as live:
        first = _served_cert(live.port, certs)
        with httpx.Client(verify=certs.context(), http2=True) as kept:
            assert kept.get(live.url + "/").status_code == 200
            # A new certificate from the same CA.
            fresh = certs.ca.issue_cert("127.0.0.1", "localhost")
            fresh.cert_chain_pems[0].write_to_path(str(certs.cert))
            fresh.private_key_pem.write_to_path(str(certs.key))
            live.signal(signal.SIGHUP)
            second = first
            for _ in range(100):
                second = _served_cert(live.port, certs)
                if second != first:
                    break
                time.sleep(0.1)
            assert second != first
            assert second == ssl.PEM_cert_to_DER_cert(fresh.cert_chain_pems[0].bytes().decode())
            # The connection opened before the reload still serves.
            assert kept.get(live.url + "/").status_code == 200

            # A broken certificate: the error is logged, the last good one stays.
            certs.cert.write_text("not a certificate\n")
            live.signal(signal.SIGHUP)
            for _ in range(100):
                if "TLS reload failed" in live.stderr():
                    break
                time.sleep(0.1)
            assert "TLS reload failed" in live.stderr()
            assert "no certificate found" in live.stderr()
            assert _served_cert(live.port, certs) == second
            assert kept.get(live.url + "/").status_code == 200


def _start_failure(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cello", "run", APP, "--port", "0", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_bad_tls_settings_are_one_line_errors(certs: Certs, tmp_path: Path):
    other = certs.ca.issue_cert("127.0.0.1")
    other_key = tmp_path / "other-key.pem"
    other.private_key_pem.write_to_path(str(other_key))
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    cases = [
        (("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(certs.key)),
         "cannot read TLS certificate"),
        (("--tls-cert", str(certs.cert), "--tls-key", str(tmp_path / "missing.pem")),
         "cannot read TLS key"),
        (("--tls-cert", str(empty), "--tls-key", str(certs.key)), "no certificate found"),
        (("--tls-cert", str(certs.cert), "--tls-key", str(empty)), "no private key found"),
        (("--tls-cert", str(certs.cert), "--tls-key", str(other_key)), "does not match"),
        ((*certs.flags(), "--tls-min-version", "1.1"), "min_version must be '1.2' or '1.3'"),
        ((*certs.flags(), "--tls-require-client-cert"), "needs ca_path"),
        (("--tls-cert", str(certs.cert)), "TLS needs --tls-key too"),
    ]  # fmt: skip
    for flags, message in cases:
        result = _start_failure(*flags)
        assert result.returncode == 2, (flags, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("cello: error: "), result.stderr
        assert message in lines[0], (message, result.stderr)


def test_cello_serve_hosts_an_asgi_app_over_https_and_h2(certs: Certs):
    process = subprocess.Popen(
        [sys.executable, "-m", "cello", "serve", "tests.apps.tls:asgi_app", "--port", "0",
         "--no-logs", *certs.flags("--http2")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split("running on ", 1)[1].split()[0]
        assert url.startswith("https://")
        with httpx.Client(verify=certs.context(), http2=True) as client:
            response = client.get(url + "/scope")
        assert response.http_version == "HTTP/2"
        scope = response.json()
        assert scope["scheme"] == "https"
        assert scope["http_version"] == "2"
        assert scope["tls"]["tls_version"] == 0x0304
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        process.stdout.close()  # type: ignore[union-attr]
    assert process.returncode == 0


DOC_EXAMPLE = """
from cello import App, TlsConfig, Http2Config, ClusterConfig, TimeoutConfig

app = App()

# Middleware
app.enable_cors(origins=["https://example.com"])
app.enable_compression(min_size=1024)
app.enable_logging()

# Routes
@app.get("/")
def index(request):
    return {"status": "ok"}

# Run with full production configuration
app.run(
    host="0.0.0.0",
    port=443,
    env="production",
    workers=8,
    tls=TlsConfig(cert_path="/etc/ssl/cert.pem", key_path="/etc/ssl/key.pem"),
    http2=Http2Config(enabled=True),
    cluster=ClusterConfig(processes=4),
    timeout=TimeoutConfig(request_timeout=60),
)
"""


def _doc_example(certs: Certs, tmp_path: Path, source: str) -> subprocess.Popen[str]:
    source = (
        source.replace("/etc/ssl/cert.pem", str(certs.cert))
        .replace("/etc/ssl/key.pem", str(certs.key))
        .replace('host="0.0.0.0"', 'host="127.0.0.1"')
        .replace("port=443", "port=0")
    )
    script = tmp_path / "server_config_example.py"
    script.write_text(source)
    with (tmp_path / "stderr").open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, str(script)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip


def _serve_doc_example(certs: Certs, tmp_path: Path, source: str) -> Iterator[str]:
    process = _doc_example(certs, tmp_path, source)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "running on https://" in line, line + (tmp_path / "stderr").read_text()
        yield line.split("running on ", 1)[1].split()[0]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        process.stdout.close()  # type: ignore[union-attr]
    assert process.returncode == 0, (tmp_path / "stderr").read_text()


def test_the_server_configuration_documents_complete_example(certs: Certs, tmp_path: Path):
    """The "Complete Example" of the server-configuration document as
    written, but for the certificate paths, the address and the port: 4
    processes (``ClusterConfig(processes=4)``) of 8 threads each
    (``workers=8`` beside it, the document's "processes x workers"),
    serving HTTPS over HTTP/2 and HTTP/1.1."""
    for url in _serve_doc_example(certs, tmp_path, DOC_EXAMPLE):
        with httpx.Client(verify=certs.context(), http2=True) as client:
            response = client.get(url + "/")
            assert response.http_version == "HTTP/2"
            assert response.json() == {"status": "ok"}
        with httpx.Client(verify=certs.context()) as client:
            response = client.get(url + "/", headers={"origin": "https://example.com"})
            assert response.json() == {"status": "ok"}
            assert response.headers["access-control-allow-origin"] == "https://example.com"


def test_the_complete_example_with_http3_serves_h3_too(certs: Certs, tmp_path: Path):
    pytest.importorskip("aioquic")
    from tests.h3client import get

    source = DOC_EXAMPLE.replace(
        "    http2=Http2Config(enabled=True),\n",
        "    http2=Http2Config(enabled=True),\n    http3=Http3Config(enabled=True),\n",
    ).replace("TimeoutConfig\n", "TimeoutConfig, Http3Config\n", 1)
    for url in _serve_doc_example(certs, tmp_path, source):
        port = int(url.rsplit(":", 1)[1])
        with httpx.Client(verify=certs.context(), http2=True) as client:
            response = client.get(url + "/")
            assert response.http_version == "HTTP/2"
            assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
        answer = get(port, certs.ca_file, "/")
        assert answer.status == 200
        assert answer.json() == {"status": "ok"}


def test_sighup_to_the_master_reloads_every_worker(tmp_path: Path):
    certs = Certs(tmp_path)
    with LiveServer(APP, *certs.flags("--workers", "2", "--no-logs")) as live:
        first = _served_cert(live.port, certs)
        # Both workers serving (and so listening for SIGHUP) before the reload.
        pids = set()
        for _ in range(200):
            with httpx.Client(verify=certs.context()) as client:
                pids.add(client.get(live.url + "/pid").json()["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
        fresh = certs.ca.issue_cert("127.0.0.1", "localhost")
        fresh.cert_chain_pems[0].write_to_path(str(certs.cert))
        fresh.private_key_pem.write_to_path(str(certs.key))
        live.signal(signal.SIGHUP)
        for _ in range(100):
            if live.stderr().count("TLS certificate reloaded") == 2:
                break
            time.sleep(0.1)
        assert live.stderr().count("TLS certificate reloaded") == 2, live.stderr()
        expected = ssl.PEM_cert_to_DER_cert(fresh.cert_chain_pems[0].bytes().decode())
        # Whichever worker accepts each connection, it serves the new certificate.
        served = {_served_cert(live.port, certs) for _ in range(20)}
        assert served == {expected}
        assert first != expected


def test_door_2_reads_the_asgi_tls_extension(certs: Certs):
    """Under an ASGI server that reports TLS (scope["extensions"]["tls"]),
    the App's handlers see the same as in door 1."""
    import asyncio

    from tests.apps.tls import app

    pem = certs.client.cert_chain_pems[0].bytes().decode()
    tls = {
        "server_cert": None, "client_cert_chain": [pem], "client_cert_name": None,
        "client_cert_error": None, "tls_version": 0x0304, "cipher_suite": 0x1301,
    }  # fmt: skip
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "2", "method": "GET",
        "scheme": "https", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"example.com")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 443), "extensions": {"tls": tls},
    }  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = json.loads(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )
    assert body["scheme"] == "https"
    assert body["http_version"] == "2"
    assert body["url"] == "https://example.com/"
    assert body["client_cert"].strip() == pem.strip()
    assert body["tls"]["tls_version"] == 0x0304
    assert body["tls"]["cipher_suite"] == 0x1301
    scope["extensions"] = {}
    sent.clear()
    asyncio.run(app(scope, receive, send))
    body = json.loads(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )
    assert body["client_cert"] is None
    assert body["tls"] is None


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """An HTTP/1.1 response head, and what arrived after it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    head, rest = received.split(b"\r\n\r\n", 1)
    return head, rest


def _upgrade_request(settings: bytes, target: bytes = b"GET /", extra: bytes = b"") -> bytes:
    return (
        target + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n" + extra + b"\r\n"
    )


def _stream_answer(events: list, stream_id: int) -> tuple[dict[bytes, bytes], bytes]:
    headers = next(
        dict(e.headers) for e in events
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id
    )  # fmt: skip
    body = b"".join(
        e.data for e in events
        if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
    )  # fmt: skip
    return headers, body


def test_an_upgrade_to_h2c_answers_the_request_on_stream_1(h2c: LiveServer):
    """RFC 7540 §3.2: a 101, then the upgrade request's response on stream
    1 over HTTP/2, then more streams on the same connection."""
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    settings = conn.initiate_upgrade_connection()
    with socket.create_connection(("127.0.0.1", h2c.port), timeout=10) as sock:
        sock.sendall(_upgrade_request(settings, b"GET /?q=1"))
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head
        assert b"\r\nupgrade: h2c" in head.lower()
        sock.sendall(conn.data_to_send())
        events = conn.receive_data(rest) if rest else []

        def ended(stream_id: int):
            return lambda seen: any(
                isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in seen
            )

        if not ended(1)(events):
            events += _events(sock, conn, ended(1))
        headers, body = _stream_answer(events, 1)
        assert headers[b":status"] == b"200"
        answer = json.loads(body)
        assert (answer["http_version"], answer["scheme"]) == ("2", "http")
        # The connection is HTTP/2 now: a hosted ASGI app on stream 3.
        conn.send_headers(
            3, [(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                (":path", "/asgi/scope")], end_stream=True,
        )  # fmt: skip
        sock.sendall(conn.data_to_send())
        headers, body = _stream_answer(_events(sock, conn, ended(3)), 3)
    assert headers[b":status"] == b"200"
    assert json.loads(body)["http_version"] == "2"


@needs_curl
def test_curl_http2_upgrades_a_cleartext_connection(h2c: LiveServer):
    result = subprocess.run(
        ["curl", "-sS", "-i", "--http2", h2c.url + "/"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 101 Switching Protocols"), result.stdout
    assert "\nHTTP/2 200" in result.stdout, result.stdout
    assert json.loads(result.stdout.rsplit("\n\n", 1)[1])["http_version"] == "2"


def test_an_upgrade_to_h2c_with_a_body_is_answered_over_http1(h2c: LiveServer):
    """The body would have to arrive before the switch: the server keeps
    HTTP/1.1, which RFC 7540 allows."""
    request = (
        _upgrade_request(b"AAMAAABkAARAAAAAAAIAAAAA", b"POST /echo", b"Content-Length: 3\r\n")
        + b"abc"
    )
    with socket.create_connection(("127.0.0.1", h2c.port), timeout=10) as sock:
        sock.sendall(request)
        head, rest = _read_head(sock)
        while len(rest) < 3:
            rest += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert rest == b"abc"


def test_without_http2_an_upgrade_to_h2c_is_ignored():
    with LiveServer(APP, "--no-logs") as live:
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
            sock.sendall(_upgrade_request(b"AAMAAABkAARAAAAAAAIAAAAA", b"GET /pid"))
            head, _ = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
