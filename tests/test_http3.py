"""HTTP/3: a live native server answering aioquic's HTTP/3 client through
the same pipeline as TCP (Cello handlers and a hosted Starlette app), Alt-Svc
on TCP responses, configuration errors, and a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("aioquic")

from aioquic.h3.events import DataReceived, HeadersReceived

from tests.h3client import Certs, get, h3_connect, make_certs
from tests.live import ROOT, LiveServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("h3-certs"))


def _trust(certs: Certs) -> ssl.SSLContext:
    """A client context that trusts the test CA (TCP is HTTPS as well)."""
    return ssl.create_default_context(cafile=str(certs.ca))


def _env(certs: Certs) -> dict[str, str]:
    return {"CELLO_TEST_CERT": str(certs.cert), "CELLO_TEST_KEY": str(certs.key)}


@pytest.fixture(scope="module")
def server(certs: Certs) -> Iterator[LiveServer]:
    with LiveServer("tests.apps.http3:app", env=_env(certs)) as live:
        yield live


def test_get_over_http3(server: LiveServer, certs: Certs) -> None:
    response = get(server.port, certs.ca, "/")
    assert response.status == 200
    assert response.json() == {"hello": "h3"}
    assert response.header("content-type") == "application/json"
    assert response.header("content-length") == str(len(response.body))
    assert response.header("date")


def test_the_handler_sees_http_version_3_and_https(server: LiveServer, certs: Certs) -> None:
    response = get(server.port, certs.ca, "/whoami?a=1")
    assert response.json() == {
        "http_version": "3",
        "scheme": "https",
        "host": "localhost",
        "path": "/whoami",
        "query": "a=1",
    }
    # Over TCP (HTTPS, from the same certificate) the handler sees HTTP/1.1.
    over_tcp = httpx.get(f"{server.url}/whoami", verify=_trust(certs), timeout=10).json()
    assert over_tcp["http_version"] == "1.1"
    assert over_tcp["scheme"] == "https"


def test_post_with_a_body(server: LiveServer, certs: Certs) -> None:
    payload = bytes(range(256)) * 100
    response = get(
        server.port,
        certs.ca,
        "/echo",
        method="POST",
        headers=[("content-type", "application/octet-stream")],
        body=payload,
    )
    assert response.status == 200
    assert response.body == payload
    assert response.header("x-length") == str(len(payload))


def test_a_body_over_the_limit_is_413(server: LiveServer, certs: Certs) -> None:
    big = b"x" * 200_000
    declared = get(
        server.port,
        certs.ca,
        "/echo",
        method="POST",
        headers=[("content-length", str(len(big)))],
        body=big,
    )
    assert declared.status == 413
    assert declared.header("content-type") == "application/problem+json"
    # Without a content-length the limit is enforced while reading.
    streamed = get(server.port, certs.ca, "/echo", method="POST", body=big)
    assert streamed.status == 413


def test_a_large_response_arrives_whole(server: LiveServer, certs: Certs) -> None:
    response = get(server.port, certs.ca, "/large")
    assert response.status == 200
    assert response.body == b"0123456789abcdef" * 65536
    assert response.header("content-length") == str(1024 * 1024)


def test_unknown_paths_get_the_problem_404(server: LiveServer, certs: Certs) -> None:
    response = get(server.port, certs.ca, "/nowhere")
    assert response.status == 404
    assert response.json()["status"] == 404


def test_head_gets_headers_and_no_body(server: LiveServer, certs: Certs) -> None:
    response = get(server.port, certs.ca, "/large", method="HEAD")
    assert response.status == 200
    assert response.body == b""


def test_server_sent_events_stream_over_http3(server: LiveServer, certs: Certs) -> None:
    async def run() -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        async with h3_connect(server.port, certs.ca) as client:
            stream = client.open("GET", "/events")
            headers: list[tuple[bytes, bytes]] = []
            chunks: list[bytes] = []
            async for event in client.events(stream):
                if isinstance(event, HeadersReceived):
                    headers = event.headers
                elif isinstance(event, DataReceived) and event.data:
                    chunks.append(event.data)
            return headers, chunks

    headers, chunks = asyncio.run(asyncio.wait_for(run(), 20))
    assert (b"content-type", b"text/event-stream") in [(k, v.split(b";")[0]) for k, v in headers]
    text = b"".join(chunks).decode()
    assert [line for line in text.splitlines() if line.startswith("data:")] == [
        "data: tick 0",
        "data: tick 1",
        "data: tick 2",
    ]
    # Streamed: more than one piece arrived.
    assert len(chunks) >= 2


def test_many_requests_share_one_connection(server: LiveServer, certs: Certs) -> None:
    async def run() -> list[int]:
        async with h3_connect(server.port, certs.ca) as client:
            responses = await asyncio.gather(*(client.request("GET", "/") for _ in range(20)))
            return [r.status for r in responses]

    assert asyncio.run(asyncio.wait_for(run(), 30)) == [200] * 20


def test_a_hosted_starlette_app_is_served_over_http3(server: LiveServer, certs: Certs) -> None:
    response = get(server.port, certs.ca, "/starlette/scope")
    assert response.status == 200
    assert response.json() == {
        "http_version": "3",
        "scheme": "https",
        "path": "/starlette/scope",
        "root_path": "/starlette",
        "host": "localhost",
        "body_length": 0,
    }
    posted = get(server.port, certs.ca, "/starlette/scope", method="POST", body=b"a" * 5000)
    assert posted.json()["body_length"] == 5000


def test_tcp_responses_advertise_http3(server: LiveServer, certs: Certs) -> None:
    response = httpx.get(f"{server.url}/", verify=_trust(certs), timeout=10)
    assert response.status_code == 200
    assert response.headers["alt-svc"] == f'h3=":{server.port}"; ma=86400'
    # Errors too: every TCP response carries it.
    missing = httpx.get(f"{server.url}/nowhere", verify=_trust(certs), timeout=10)
    assert missing.headers["alt-svc"] == f'h3=":{server.port}"; ma=86400'


def test_the_startup_line_names_the_udp_port(server: LiveServer) -> None:
    assert f"HTTP/3 on UDP port {server.port}" in "".join(server.output)


def test_without_http3_there_is_no_alt_svc() -> None:
    with LiveServer("tests.apps.core:app") as live:
        response = httpx.get(f"{live.url}/", timeout=10)
        assert "alt-svc" not in response.headers


def test_a_client_that_does_not_trust_the_certificate_is_refused(
    server: LiveServer, certs: Certs, tmp_path: Path
) -> None:
    other = make_certs(tmp_path)

    async def run() -> None:
        async with h3_connect(server.port, other.ca) as client:
            await client.request("GET", "/")

    with pytest.raises(ConnectionError):
        asyncio.run(asyncio.wait_for(run(), 20))
    # The server still serves trusting clients.
    assert get(server.port, certs.ca, "/").status == 200


def test_a_stop_lets_requests_in_flight_finish_then_closes_with_h3_no_error(
    certs: Certs,
) -> None:
    with LiveServer("tests.apps.http3:app", env=_env(certs)) as live:

        async def run() -> tuple[int, int]:
            async with h3_connect(live.port, certs.ca) as client:
                pending = asyncio.ensure_future(client.request("GET", "/slow?s=1"))
                await asyncio.sleep(0.3)  # the request has reached the handler
                live.signal(signal.SIGINT)
                response = await pending
                terminated = await asyncio.wait_for(client.terminated, 10)
                return response.status, terminated.error_code

        status, code = asyncio.run(asyncio.wait_for(run(), 30))
        assert status == 200
        assert code == 0x100  # H3_NO_ERROR
        assert live.wait(15) == 0


def _run_config_error(certs: Certs, options: str) -> subprocess.CompletedProcess[str]:
    script = (
        f"from cello import App, Http3Config, TlsConfig\napp = App()\napp.run(port=0, {options})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(certs), "PATH": "/usr/bin:/bin"},
    )


def test_http3_without_tls_is_a_config_error(certs: Certs) -> None:
    result = _run_config_error(certs, "http3=Http3Config(enabled=True)")
    assert result.returncode == 2
    assert "HTTP/3 needs TLS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreadable_certificate_is_a_one_line_error(certs: Certs, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    result = _run_config_error(
        certs,
        f"http3=Http3Config(enabled=True), tls=TlsConfig(cert_path={str(missing)!r}, "
        f"key_path={str(certs.key)!r})",
    )
    assert result.returncode == 2
    assert "cannot read TLS certificate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_key_that_does_not_fit_the_certificate_is_an_error(certs: Certs, tmp_path: Path) -> None:
    other = make_certs(tmp_path)
    result = _run_config_error(
        certs,
        f"http3=Http3Config(enabled=True), tls=TlsConfig(cert_path={str(certs.cert)!r}, "
        f"key_path={str(other.key)!r})",
    )
    assert result.returncode == 2
    assert "does not match the certificate" in result.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_udp_payload_size": 1000}, "max_udp_payload_size must be between 1200 and 65527"),
        ({"max_udp_payload_size": 70000}, "max_udp_payload_size must be between 1200 and 65527"),
        ({"initial_max_streams_bidi": 0}, "initial_max_streams_bidi must be a positive integer"),
        ({"max_idle_timeout": 0}, "max_idle_timeout must be a positive number"),
        ({"max_idle_timeout": None}, "max_idle_timeout must be a positive number"),
    ],
)
def test_bad_http3_values_are_refused(kwargs: dict[str, object], message: str) -> None:
    from cello import Http3Config

    with pytest.raises(ValueError, match=message):
        Http3Config(enabled=True, **kwargs)  # type: ignore[arg-type]


def test_the_http3_flag_turns_http3_on(certs: Certs) -> None:
    from cello import TlsConfig
    from cello._settings import resolve

    tls = TlsConfig(cert_path=str(certs.cert), key_path=str(certs.key))
    config = resolve({"tls": tls}, {"http3_flag": True}, reload_dir=".")
    assert config.http3 is not None and config.http3.enabled
    assert resolve({}, {}, reload_dir=".").http3 is None
    with pytest.raises(SystemExit):
        resolve({}, {"http3_flag": True}, reload_dir=".")


def test_workers_each_serve_http3_on_the_shared_port(certs: Certs) -> None:
    with LiveServer("tests.apps.http3:app", "--workers", "2", env=_env(certs)) as live:
        assert "HTTP/3 on UDP port" in "".join(live.output)
        # Each connection comes from a new client port: the kernel spreads
        # them over the workers' sockets, and every one must be served.
        for _ in range(6):
            assert get(live.port, certs.ca, "/").json() == {"hello": "h3"}


def test_a_replaced_worker_takes_over_its_predecessors_udp_socket(certs: Certs) -> None:
    """The master binds one UDP socket per worker before forking; a worker
    that dies is replaced on the same socket, so the clients the kernel
    sends there are served (a fresh socket would leave the old one's
    datagrams unread)."""
    with LiveServer("tests.apps.http3:app", "--workers", "2", env=_env(certs)) as live:
        pids = {get(live.port, certs.ca, "/pid").json()["pid"] for _ in range(12)}
        assert len(pids) == 2, "both workers serve HTTP/3"
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        for _ in range(100):
            if "starting a replacement" in live.stderr():
                break
            time.sleep(0.1)
        after = {get(live.port, certs.ca, "/pid").json()["pid"] for _ in range(12)}
        assert victim not in after
        assert len(after) == 2, "the replacement serves the dead worker's share"


def test_http_version_in_the_asgi_door_comes_from_the_scope(
    certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from cello.testing import TestClient

    for name, value in _env(certs).items():
        monkeypatch.setenv(name, value)
    app = importlib.import_module("tests.apps.http3").app
    with TestClient(app) as client:
        seen = client.get("/whoami").json()
    assert seen["http_version"] == "1.1"
    assert seen["scheme"] == "http"


def test_a_client_closing_its_connection_ends_a_streamed_response(
    server: LiveServer, certs: Certs
) -> None:
    async def run() -> bytes:
        async with h3_connect(server.port, certs.ca) as client:
            stream = client.open("GET", "/forever")
            async for event in client.events(stream):
                if isinstance(event, DataReceived) and event.data:
                    return event.data
        raise AssertionError("no event arrived")

    assert b"data: tick" in asyncio.run(asyncio.wait_for(run(), 20))
    # The connection is closed: the server drops the response, and the
    # stream's source is closed (its finally block runs).
    closed = False
    for _ in range(200):
        closed = httpx.get(f"{server.url}/forever/closed", verify=_trust(certs), timeout=10).json()[
            "closed"
        ]
        if closed:
            break
        time.sleep(0.05)
    assert closed


def _resume(port: int, ca: Path) -> tuple[int, bool]:
    """A first connection keeps the server's session ticket; a second one
    resumes with it, sending its request at once. Returns that request's
    status and whether the server accepted it as 0-RTT early data."""

    async def run() -> tuple[int, bool]:
        tickets: list[Any] = []
        async with h3_connect(port, ca, session_ticket_handler=tickets.append) as first:
            assert (await first.request("GET", "/")).status == 200
        assert tickets, "the server sent no session ticket"
        async with h3_connect(port, ca, session_ticket=tickets[-1], wait_connected=False) as second:
            response = await second.request("GET", "/")
            return response.status, second._quic.tls.early_data_accepted

    return asyncio.run(asyncio.wait_for(run(), 20))


def test_0rtt_is_refused_unless_enabled(server: LiveServer, certs: Certs) -> None:
    assert _resume(server.port, certs.ca) == (200, False)


def test_0rtt_early_requests_are_served_when_enabled(certs: Certs) -> None:
    with LiveServer("tests.apps.http3:app", env={**_env(certs), "CELLO_TEST_0RTT": "1"}) as live:
        assert _resume(live.port, certs.ca) == (200, True)
