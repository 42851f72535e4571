"""The access log: one line per request on standard output, through the
native server (door 1), the app called as ASGI (door 2), around a mounted
Starlette app, and as ``run()``'s ``logs`` and ``cello serve --logs``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cello import App, Response
from cello.middleware import AccessLog, LoggingConfig
from cello.testing import TestClient
from tests.live import ROOT, LiveServer

TEXT_LINE = re.compile(
    r'^(?P<client>\S+) - \[(?P<time>[0-9T:.\-]+Z)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r"(?P<status>\d{3}) (?P<size>\d+|-) (?P<ms>[0-9.]+)ms (?P<rid>\S+)(?P<aborted> aborted)?$"
)


def wait_for(read: Callable[[], list[str]], match: Callable[[str], bool], timeout: float = 10):
    """The lines `read` has given once one satisfies `match` (the writer is
    a thread of its own, so a line lands a little after its response)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read()
        if any(match(line) for line in lines):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching line in {lines[-20:]}")
        time.sleep(0.02)


class Logged:
    """One door's client, and the access-log lines it has produced."""

    def __init__(self, client: httpx.Client, read: Callable[[], list[str]], door: str) -> None:
        self.client = client
        self._read = read
        self.door = door

    def get(self, path: str, **kwargs: Any) -> tuple[httpx.Response, dict[str, Any]]:
        """Sends a GET with a fresh request ID; returns the response and its line."""
        rid = f"t-{uuid.uuid4()}"
        response = self.client.get(path, headers={"x-request-id": rid}, **kwargs)
        return response, self.line(rid)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._read() if line.startswith("{")]

    def line(self, rid: str) -> dict[str, Any]:
        wait_for(self._read, lambda line: rid in line)
        found = [entry for entry in self.lines() if entry["request_id"] == rid]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture(scope="module")
def log_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.access_log:app", "--env", "production") as live:
        yield live


class Captured:
    """What the process wrote to its standard output so far (capfd)."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        self.seen: list[str] = []

    def __call__(self) -> list[str]:
        self.seen += self.capfd.readouterr().out.splitlines()
        return self.seen


@pytest.fixture
def logged(request: pytest.FixtureRequest, door: str, capfd) -> Iterator[Logged]:
    if door == "native":
        server: LiveServer = request.getfixturevalue("log_server")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield Logged(c, lambda: list(server.output), door)
    else:
        from tests.apps.access_log import app

        with TestClient(app) as c:
            yield Logged(c, Captured(capfd), door)


def test_a_whole_response_gets_one_line_with_every_field(logged):
    response, line = logged.get("/?a=1&b=%22x%22")
    assert response.status_code == 200
    assert response.headers["x-request-id"] == line["request_id"]
    assert line["method"] == "GET"
    assert line["target"] == "/?a=1&b=%22x%22"
    assert line["http_version"] == "HTTP/1.1"
    assert line["status"] == 200
    assert line["size"] == len(response.content)
    assert line["aborted"] is False
    assert 0 <= line["duration_ms"] < 10_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    # Door 1 knows the peer; door 2 takes it from the scope's `client`.
    assert re.fullmatch(r"127\.0\.0\.1:\d+", line["client"]), line["client"]


def test_framework_refusals_are_logged_with_their_status(logged):
    response, line = logged.get("/no/such/path")
    assert response.status_code == 404
    assert line["status"] == 404
    assert line["size"] == len(response.content)


def test_a_streamed_body_is_logged_with_the_bytes_sent(logged):
    response, line = logged.get("/stream")
    assert response.text == "one;two;three;"
    assert line["status"] == 200
    assert line["size"] == 14
    assert line["aborted"] is False


@pytest.mark.parametrize(
    ("path", "body"), [("/starlette/plain", "from starlette"), ("/starlette/feed", "s1;s22;")]
)
def test_a_mounted_starlette_app_is_logged_whole_or_streamed(logged, path, body):
    response, line = logged.get(path)
    assert response.text == body
    assert line["target"] == path
    assert line["status"] == 200
    assert line["size"] == len(body)


def test_probe_paths_and_the_paths_below_them_are_skipped(logged):
    skipped = []
    for path in ("/health", "/health/live", "/metrics"):
        rid = f"skip-{uuid.uuid4()}"
        assert logged.client.get(path, headers={"x-request-id": rid}).status_code == 200
        skipped.append(rid)
    # Lines arrive in order: once a later request's line is there, a skipped
    # request's line would have been too.
    _, line = logged.get("/healthz")
    assert line["status"] == 404, "a path merely starting with /health is logged"
    assert not [entry for entry in logged.lines() if entry["request_id"] in skipped]


def test_a_client_leaving_mid_stream_still_gets_a_line_marked_aborted(log_server):
    rid = f"gone-{uuid.uuid4()}"
    with socket.create_connection(("127.0.0.1", log_server.port), timeout=10) as sock:
        sock.sendall(f"GET /endless HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n\r\n".encode())
        received = b""
        while b"data: first" not in received:
            received += sock.recv(4096)
    wait_for(lambda: list(log_server.output), lambda line: rid in line)
    [line] = [json.loads(x) for x in log_server.output if rid in x]
    assert line["status"] == 200
    assert line["size"] == len("data: first\n\n")
    assert line["aborted"] is True


def _scope(path: bytes, query: bytes = b"", rid: str = "rid-1") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"test"), (b"x-request-id", rid.encode())],
        "client": ("10.1.2.3", 4567),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: App, scope: dict[str, Any], leave_after_first_chunk: bool = False) -> list:
    """Calls the app as ASGI; with `leave_after_first_chunk`, the client
    disconnects once the first body chunk arrived."""
    sent: list[dict[str, Any]] = []
    gone = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if leave_after_first_chunk and message["type"] == "http.response.body":
            gone.set()

    await app(scope, receive, send)
    return sent


def test_an_asgi_client_leaving_mid_stream_still_gets_a_line_marked_aborted(capfd):
    from tests.apps.access_log import app

    read = Captured(capfd)
    rid = f"gone-{uuid.uuid4()}"
    sent = asyncio.run(_call(app, _scope(b"/endless", rid=rid), leave_after_first_chunk=True))
    assert sent[0]["status"] == 200
    wait_for(read, lambda line: rid in line)
    [line] = [json.loads(x) for x in read() if rid in x]
    assert line["aborted"] is True
    assert line["size"] == len("data: first\n\n")
    assert line["client"] == "10.1.2.3:4567"


HOSTILE_PATH = b'/x"\n{"status":1}\r\x00\x1b[31m\\'
HOSTILE_QUERY = b'q="a"\n\x7f'


def test_json_lines_stay_valid_json_for_hostile_targets(capfd):
    app = App()
    app.enable_logging(format="json")
    read = Captured(capfd)
    asyncio.run(_call(app, _scope(HOSTILE_PATH, HOSTILE_QUERY)))
    lines = wait_for(read, lambda line: line.startswith("{"))
    entries = [json.loads(line) for line in lines if line.strip()]
    assert len(entries) == 1, lines
    assert entries[0]["target"] == (HOSTILE_PATH + b"?" + HOSTILE_QUERY).decode()
    assert entries[0]["status"] == 404


def test_text_lines_cannot_be_forged_by_a_target(capfd):
    app = App()
    app.enable_request_id()
    app.enable_logging()
    read = Captured(capfd)
    asyncio.run(_call(app, _scope(HOSTILE_PATH, HOSTILE_QUERY, rid="evil")))
    lines = wait_for(read, lambda line: "evil" in line)
    assert len([line for line in lines if line.strip()]) == 1, lines
    match = TEXT_LINE.match(lines[-1])
    assert match, lines[-1]
    assert match["request"] == (r"GET /x\"\n{\"status\":1}\r\x00\x1b[31m\\?q=\"a\"\n\x7f HTTP/1.1")
    assert match["status"] == "404"
    assert match["rid"] == "evil"


def test_the_native_server_logs_raw_hostile_targets_safely(log_server):
    rid = f"raw-{uuid.uuid4()}"
    with socket.create_connection(("127.0.0.1", log_server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /a\"b%0a%0d{{}}\\?q='x' HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        while sock.recv(4096):
            pass
    wait_for(lambda: list(log_server.output), lambda line: rid in line)
    [line] = [json.loads(x) for x in log_server.output if rid in x]
    assert line["target"] == "/a\"b%0a%0d{}\\?q='x'"
    assert line["status"] == 404


def _serve_lines(*args: str, requests: int = 2) -> list[str]:
    """Starts `python -m cello <args> --port 0`, sends `requests` GETs to /,
    and returns what it printed after its startup line."""
    with subprocess.Popen(
        [sys.executable, "-m", "cello", *args, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        assert process.stdout is not None
        try:
            url = process.stdout.readline().split("running on ", 1)[1].split()[0]
            for n in range(requests):
                httpx.get(url + "/", headers={"x-request-id": f"req-{n}"})
            # One more request marks the end of what the others logged.
            httpx.get(url + "/", headers={"x-request-id": "last"})
            lines = []
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if "last" in line:
                    break
            return lines
        finally:
            process.terminate()
            process.wait(30)


def test_run_logs_once_in_debug_mode_whether_or_not_the_app_enabled_logging():
    # The app enabled JSON logging itself; debug mode's logs add no second line.
    lines = _serve_lines("run", "tests.apps.access_log:app", "--debug")
    assert [json.loads(line)["request_id"] for line in lines] == ["req-0", "req-1", "last"]
    # This app did not: run() adds the log, in the format the flag names.
    lines = _serve_lines("run", "tests.apps.plain_logs:app", "--log-format", "text")
    assert [TEXT_LINE.match(line)["rid"] for line in lines] == ["req-0", "req-1", "last"]


def test_cello_serve_logs_a_foreign_asgi_app_through_the_same_layer():
    lines = _serve_lines(
        "serve", "tests.apps.mounted:raw_asgi", "--logs", "--log-format", "json", "--request-id"
    )
    entries = [json.loads(line) for line in lines]
    assert [e["request_id"] for e in entries] == ["req-0", "req-1", "last"]
    assert all(e["status"] == 200 and e["size"] == 1 for e in entries)


def test_no_logs_means_no_lines():
    with LiveServer("tests.apps.plain_logs:app", "--debug", "--no-logs") as live:
        assert httpx.get(live.url + "/", headers={"x-request-id": "quiet"}).status_code == 200
        time.sleep(0.5)  # a line would be written within milliseconds
        assert not [line for line in live.output if "quiet" in line]


def test_an_app_knows_whether_it_logs_every_path():
    app = App()
    assert not app._logs_requests()
    app.enable_logging()
    assert app._logs_requests()
    assert AccessLog is LoggingConfig


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "xml"}, "format must be 'text' or 'json', not 'xml'"),
        ({"skip_paths": "/health"}, "skip_paths takes a list of paths"),
        ({"skip_paths": ["health"]}, "skip_paths takes paths starting with '/', not 'health'"),
        ({"skip_paths": [None]}, "skip_paths takes paths starting with '/', not None"),
    ],
)
def test_bad_configuration_names_the_option(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AccessLog(**options)
    with pytest.raises(ValueError, match=re.escape(message)):
        App().enable_logging(**options)


def test_the_native_builder_checks_what_python_did_not():
    core = App()._core
    with pytest.raises(ValueError, match="'format' must be 'text' or 'json'"):
        core.add_layer("logging", "", {"format": "yaml"})
    with pytest.raises(ValueError, match="'skip_paths' takes paths starting with '/'"):
        core.add_layer("logging", "", {"skip_paths": ["x"]})
    with pytest.raises(ValueError, match="'skip_paths' has the wrong type"):
        core.add_layer("logging", "", {"skip_paths": [1]})


def test_a_logged_stream_keeps_its_declared_length(capfd):
    # The byte counter passes chunks through untouched, so a stream that
    # declared its length keeps Content-Length rather than going chunked.
    app = App()
    app.enable_logging(format="json")

    @app.get("/declared")
    def declared(request):
        async def chunks():
            yield b"abc"
            yield b"de"

        return Response.stream(chunks(), headers={"content-length": "5"})

    read = Captured(capfd)
    with TestClient(app) as client:
        response = client.get("/declared")
    assert response.headers["content-length"] == "5"
    assert response.content == b"abcde"
    lines = wait_for(read, lambda line: line.startswith("{"))
    assert [json.loads(line)["size"] for line in lines if line.startswith("{")] == [5]
