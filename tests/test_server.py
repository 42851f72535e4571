"""The HTTP/1.1 server itself, driven over raw sockets: keep-alive,
pipelining, malformed requests, header limits, startup and shutdown."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from tests.live import LiveServer


def exchange(server, payload: bytes, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
            if not read_until_close:
                break
        return b"".join(chunks)


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with httpx.Client(base_url=server.url) as client:
        for _ in range(20):
            assert client.get("/").status_code == 200
        # httpx reuses the pooled connection; the server kept it open.
        assert client.get("/users/1").json()["id"] == "1"


def test_pipelined_requests_are_answered_in_order(server):
    requests = (
        b"".join(f"GET /users/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5))
        + b"GET /users/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reply = exchange(server, requests)
    assert reply.count(b"HTTP/1.1 200 OK") == 6
    positions = [reply.index(f'"id":"{i}"'.encode()) for i in [0, 1, 2, 3, 4, "last"]]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "payload",
    [
        b"NOT A REQUEST\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    ],
)
def test_malformed_requests_get_400_and_server_keeps_serving(server, payload):
    reply = exchange(server, payload)
    assert reply.startswith(b"HTTP/1.1 400")
    assert httpx.get(server.url + "/").status_code == 200


def test_too_many_headers_is_431(server):
    headers = "".join(f"X-H{i}: v\r\n" for i in range(150))
    reply = exchange(server, f"GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 431")


def test_oversize_content_length_is_413_without_reading_the_body(server):
    # Declares 100 MiB but sends nothing: the answer must not wait for the body.
    reply = exchange(
        server,
        b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n",
        read_until_close=False,
    )
    assert reply.startswith(b"HTTP/1.1 413")


def test_client_disconnecting_mid_request_does_not_hurt(server):
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert httpx.get(server.url + "/").status_code == 200


def test_response_headers_have_date_and_no_duplicates(server):
    response = httpx.get(server.url + "/")
    assert "date" in response.headers
    assert response.headers.get_list("content-length") == ["27"]


def test_startup_line_and_clean_exit_on_sigint():
    live = LiveServer("tests.apps.core:app").start()
    try:
        assert live.url.startswith("http://127.0.0.1:")
        assert "Cello running on" in "".join(live.output)
        assert live.stop() == 0
    finally:
        live.close()


def test_lifecycle_hooks_run_in_order():
    live = LiveServer("tests.apps.hooks:app").start()
    try:
        assert httpx.get(live.url + "/events").json() == ["startup-sync", "startup-async"]
        assert live.stop() == 0
        assert "shutdown-sync\nshutdown-async\n" in "".join(live.output)
    finally:
        live.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "70000"], "invalid port"),
        (["--env", "staging"], "unknown env"),
        (["--threads", "-1"], "invalid threads"),
        (["--workers", "0"], "invalid workers"),
        (["--log-format", "xml"], "unknown log format"),
        (["--port", "abc"], "invalid command-line flags"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(flags, message):
    result = subprocess.run(
        [sys.executable, "examples/hello.py", *flags],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "examples/hello.py", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("tls=TlsConfig('c.pem', 'k.pem')", "tls= is not available yet"),
        ("http2=Http2Config()", "http2= is not available yet"),
        ("http3=Http3Config(enabled=True)", "http3= is not available yet"),
        ("timeout=5", "timeout= takes a TimeoutConfig"),
        ("bogus=1", "unknown run() option(s): bogus"),
        ("port=70000", "invalid port"),
    ],
)
def test_bad_run_arguments_exit_2(code, message):
    script = f"from cello import *\nfrom examples.hello import app\napp.run({code})\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
