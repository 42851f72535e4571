"""The HTTP/1.1 server itself, driven over raw sockets: keep-alive,
pipelining, malformed requests, header limits, startup and shutdown."""

from __future__ import annotations

import gzip
import json
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
        # hyper's own refusals of transfer codings: chunked not last, or on HTTP/1.0.
        b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST /body HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_malformed_requests_get_400_problems_and_server_keeps_serving(server, payload):
    status, headers, body = problem_of(exchange(server, payload))
    assert status == 400
    assert body["title"] == "Bad Request"
    assert body["detail"].startswith("the request could not be parsed: ")
    assert headers["connection"] == "close"
    assert httpx.get(server.url + "/").status_code == 200


def problem_of(reply: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of a single raw HTTP/1.1 problem answer."""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/problem+json", reply
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("head", "detail"),
    [
        (b"GET / HTTP/1.1\r\n", "an HTTP/1.1 request must have a Host header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n", "the request has more than one Host header"),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n", "the request has more than one Host header"),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n", 'the Host header "a b" is not a valid host[:port]'),
        (b"GET / HTTP/1.1\r\nHost: u@h\r\n", 'the Host header "u@h" is not a valid host[:port]'),
        (b"GET / HTTP/1.1\r\nHost: h:8o\r\n", 'the Host header "h:8o" is not a valid host[:port]'),
    ],
)
def test_bad_host_is_a_400_problem_and_closes(server, head, detail):
    status, headers, body = problem_of(exchange(server, head + b"\r\n"))
    assert status == 400
    assert body == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": detail,
        "instance": "/",
    }
    assert headers["connection"] == "close"


@pytest.mark.parametrize(
    "host", [b"", b"example.com", b"example.com:8080", b"[::1]:80", b"127.0.0.1"]
)
def test_valid_hosts_and_http_1_0_without_host_are_served(server, host):
    reply = exchange(server, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert exchange(server, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")


@pytest.mark.parametrize(
    "codings",
    [
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: identity, chunked\r\n",
    ],
)
def test_transfer_codings_other_than_chunked_are_501(server, codings):
    gzipped = gzip.compress(b"a=1")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(gzipped), gzipped)
    request = b"POST /form HTTP/1.1\r\nHost: x\r\n" + codings + b"\r\n" + chunked
    status, headers, body = problem_of(exchange(server, request))
    assert status == 501
    assert body["title"] == "Not Implemented"
    assert body["detail"].endswith("is not supported; only chunked is")
    assert headers["connection"] == "close"


def test_chunked_applied_twice_is_400(server):
    request = b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
    status, _, body = problem_of(exchange(server, request + b"3\r\nabc\r\n0\r\n\r\n"))
    assert status == 400
    assert body["detail"] == "the chunked transfer coding is applied more than once"


@pytest.mark.parametrize(
    "head",
    [
        "".join(f"X-H{i}: v\r\n" for i in range(150)),  # over max_headers (100)
        f"X-Big: {'v' * 9000}\r\n",  # over max_header_size (8192)
    ],
)
def test_head_over_the_limits_is_a_431_problem(server, head):
    request = f"GET / HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode()
    status, headers, body = problem_of(exchange(server, request))
    assert status == 431
    assert body == {
        "type": "about:blank",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": (
            "the request head is over the server's limits of 100 header fields and 8192 bytes"
        ),
    }
    assert headers["connection"] == "close"


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
        ("tls=TlsConfig('c.pem', 'k.pem')", "cannot read TLS certificate c.pem"),
        (
            "tls=TlsConfig('c.pem', 'k.pem', require_client_cert=True)",
            "require_client_cert=True) needs ca_path",
        ),
        ("http3=Http3Config(enabled=True)", "HTTP/3 needs TLS"),
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
