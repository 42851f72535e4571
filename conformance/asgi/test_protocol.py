"""Door 3 against every server point of shared/ASGI.md, with a bare ASGI
app that records what the server did."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from conformance.doors import ROOT, pipelined

TARGET = "conformance.asgi.protocol_app:app"


class Served:
    def __init__(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = 0
        self.url = ""
        command = [sys.executable, "-m", "cello", "serve", TARGET, "--port", "0", "--no-logs"]
        self.process = subprocess.Popen(
            [*command, *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def wait_ready(self) -> None:
        """Reads the startup line, which names the port the server bound."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "running on" in line, f"server did not start: {line!r}"
        self.url = line.split("running on ", 1)[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


# Both layouts: the event loop's thread serving in its waits (the default),
# and one I/O thread of its own handing requests over to the loop.
@pytest.fixture(scope="module", params=["0", "1"], ids=["threads-0", "threads-1"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    server = Served("--threads", request.param)
    server.wait_ready()
    yield server
    server.stop()


def record(served: Served) -> dict:
    return httpx.get(served.url + "/record").json()


def test_scope_keys_and_types(served):
    scope = httpx.get(
        served.url + "/scope/%C3%A9?x=%41&y",
        headers=[("X-Dup", "1"), ("X-Dup", "2"), ("X-Case", "Value")],
    ).json()
    assert scope["path"] == "/scope/é" and scope["path"] != scope["raw_path"]
    assert scope["raw_path"] == "/scope/%C3%A9"
    assert scope["raw_path_type"] == "bytes"
    assert scope["query_string"] == "x=%41&y"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["root_path"] == ""
    assert ["x-dup", "1"] in scope["headers"] and ["x-dup", "2"] in scope["headers"]
    assert ["x-case", "Value"] in scope["headers"]  # names lower-cased, values kept
    assert scope["header_types"] == ["bytesbytes"]
    assert scope["client"] == ["str", "int"] and scope["server"] == ["str", "int"]
    for key in ("type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                "query_string", "root_path", "headers", "client", "server", "state",
                "extensions"):  # fmt: skip
        assert key in scope["keys"]


def test_response_headers_may_be_any_pairs_of_bytes(served):
    response = httpx.get(served.url + "/header-shapes")
    assert response.status_code == 200
    assert [response.headers[n] for n in ("x-tuple", "x-list", "x-bytearray")] == ["1", "2", "3"]


def test_response_header_values_keep_their_bytes(served):
    response = httpx.get(served.url + "/header-bytes")
    assert (b"x-latin", b"caf\xe9") in response.headers.raw
    assert [v for n, v in response.headers.raw if n == b"x-dup"] == [b"1", b"2"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/bad-header-pair", "[name, value] pair"),
        ("/bad-header-name", "invalid header name"),
        ("/bad-header-value", "CR, LF or NUL"),
    ],
)
def test_a_malformed_response_header_is_refused_by_send(served, path, message):
    response = httpx.get(served.url + path)
    assert response.status_code == 400
    assert message in response.json()["refused"]


def test_lifespan_state_is_shared_as_a_shallow_copy(served):
    first = httpx.get(served.url + "/scope").json()
    second = httpx.get(served.url + "/scope").json()
    assert first["state"] == {"token": "from-lifespan"}
    assert second["state"] == {"token": "from-lifespan"}  # the mutation did not leak


def test_body_streams_in_messages_then_receive_reports_disconnect(served):
    def chunks():
        for _ in range(4):
            yield b"x" * 100_000

    messages = httpx.post(served.url + "/body", content=chunks()).json()
    assert sum(m[1] for m in messages) == 400_000
    assert all(m[0] == "http.request" for m in messages)
    assert [m[2] for m in messages][-1] is False
    assert all(more for _, _, more in messages[:-1])
    # After the final body message and the complete response, receive() says
    # http.disconnect (never a second http.request).
    assert httpx.get(served.url + "/after-body").json() == "http.disconnect"


def test_receive_blocks_after_the_body_until_the_response_is_done(served):
    assert httpx.get(served.url + "/blocked-receive").status_code == 200
    for _ in range(100):
        if "blocked_result" in record(served):
            break
        time.sleep(0.02)
    state = record(served)
    assert state["blocked_before_response"] is True
    assert state["blocked_result"] == "http.disconnect"


def test_receive_reports_disconnect_while_the_app_is_working(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(100):
            if record(served).get("disconnect") == "waiting":
                break
            time.sleep(0.02)
    for _ in range(250):
        if record(served).get("disconnect") == "http.disconnect":
            break
        time.sleep(0.02)
    assert record(served)["disconnect"] == "http.disconnect"


def test_receive_reports_disconnect_when_the_client_leaves_mid_response(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /stream-then-wait HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"first;" not in received:
            received += sock.recv(4096)
    # The app is in receive(), not send(): nothing but the closed socket says
    # the client is gone.
    for _ in range(250):
        if record(served).get("streaming_disconnect") == "http.disconnect":
            break
        time.sleep(0.02)
    assert record(served)["streaming_disconnect"] == "http.disconnect"


def test_each_chunk_is_flushed_before_send_returns(served):
    with httpx.Client(base_url=served.url) as client:
        with client.stream("GET", "/flush") as response:
            chunks = response.iter_raw()
            # The app is now blocked until /release-flush: the first chunk must
            # already be here.
            assert next(chunks) == b"first;"
            httpx.get(served.url + "/release-flush")
            assert b"".join(chunks) == b"second;"


def test_send_waits_for_a_slow_client(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)  # the client reads nothing meanwhile
        sent = record(served)["flood_sent"]
        # 2000 chunks of 64 KiB would be 128 MiB buffered; back-pressure stops
        # once the channel and the socket buffers are full.
        assert sent < 500
    assert record(served)["flood_sent"] < 2000


def test_send_after_disconnect_raises_an_oserror(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /send-after-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1024)
    for _ in range(250):
        if "send_error_is_oserror" in record(served):
            break
        time.sleep(0.02)
    assert record(served)["send_error_is_oserror"] is True


def test_a_send_waiting_for_room_raises_an_oserror_when_the_client_leaves(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /pending-send HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)  # the client reads nothing: the app's send is now waiting for room
    for _ in range(250):
        if "pending_send_raised" in record(served):
            break
        time.sleep(0.02)
    state = record(served)
    assert state.get("pending_send_raised") is True
    assert "pending_send_returned" not in state  # the waiting send raised, not returned False


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("longer", "Response content longer than Content-Length"),
        ("longer-streamed", "Response content longer than Content-Length"),
        ("shorter", "Response content shorter than Content-Length"),
        ("shorter-streamed", "Response content shorter than Content-Length"),
    ],
)
def test_a_body_that_breaks_its_content_length_closes_the_connection(served, case, error):
    received, closed = pipelined(served.port, get(f"/length/{case}"), get("/scope"))
    # The client sees one incomplete response and a closed connection: the
    # surplus is never read as a second response, nor the next response as
    # the rest of a short body.
    assert closed, received
    assert b"injected" not in received
    assert b'"keys"' not in received, "the next request was answered on this connection"
    assert record(served)[f"length-{case}"] == error


def test_a_body_that_ends_at_its_declared_length_keeps_the_connection(served):
    received, _ = pipelined(served.port, get("/length/exact-then-empty"), get("/scope"), timeout=2)
    assert received.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n")
    assert b"\r\n\r\nhelloHTTP/1.1 200 OK\r\n" in received
    assert b'"keys"' in received
    assert record(served)["length-exact-then-empty"] == "sent"


def test_head_and_bodyless_responses_keep_their_declared_length(served):
    received, _ = pipelined(served.port, get("/length/head", "HEAD"), get("/scope"), timeout=2)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert b"content-length: 100" in head
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), "HEAD sent a body"
    assert record(served)["length-head"] == "sent"


def test_app_that_returns_without_responding_gets_500(served):
    response = httpx.get(served.url + "/no-response")
    assert response.status_code == 500
    assert "returned without sending a response" in response.json()["detail"]


def test_app_that_raises_before_responding_gets_500(served):
    assert httpx.get(served.url + "/raise-before").status_code == 500


def test_app_that_raises_after_starting_gets_its_connection_closed(served):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(served.url + "/raise-after")
    assert httpx.get(served.url + "/scope").status_code == 200


def test_lifespan_startup_failure_exits_non_zero_with_the_message():
    server = Served(env={"PROTOCOL_FAIL_STARTUP": "1"})
    code, _, err = server.stop() if server.process.wait(30) is not None else (None, "", "")
    assert code == 3
    assert "failed to start: no database" in err


def test_app_without_lifespan_support_is_served_anyway():
    server = Served(env={"PROTOCOL_NO_LIFESPAN": "1"})
    try:
        server.wait_ready()
        assert httpx.get(server.url + "/scope").json()["state"] == {}
    finally:
        server.stop()


def test_lifespan_shutdown_runs_on_sigterm():
    server = Served()
    server.wait_ready()
    code, out, _ = server.stop()
    assert code == 0
    assert "protocol app: shutdown complete" in out


def test_mounted_app_runs_its_lifespan_in_every_worker():
    server = Served("--workers", "2")
    try:
        server.wait_ready()
        for _ in range(20):
            assert httpx.get(server.url + "/scope").json()["state"] == {"token": "from-lifespan"}
    finally:
        code, out, _ = server.stop()
    assert code == 0
    assert out.count("protocol app: shutdown complete") == 2


def test_concurrent_requests_are_independent_tasks(served):
    results = []

    def get() -> None:
        results.append(httpx.get(served.url + "/scope", timeout=10).status_code)

    threads = [threading.Thread(target=get) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200] * 20
