"""Static files through both doors: the native server (raw sockets where a
client would tidy the path) and the app called as ASGI, plus a quick run
under uvicorn; and ``StaticFilesConfig`` in each documented form."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from cello import App, StaticFilesConfig
from cello.middleware import StaticFilesConfig as FromMiddleware
from cello.testing import TestClient
from tests.apps.static_files import make_app
from tests.live import ROOT, LiveServer

MiB = 1024 * 1024
SECRETS = (b"TOP-SECRET-APP", b"OUTSIDE-SECRET", b"DOTENV-SECRET", b"BACKUP-SECRET", b"root:x:0")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served folder, with secrets beside it and symlinks out of it."""
    base = tmp_path_factory.mktemp("static")
    (base / "app.py").write_bytes(b"TOP-SECRET-APP")
    (base / "outside.txt").write_bytes(b"OUTSIDE-SECRET")
    root = base / "root"
    (root / "css").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "hello.txt").write_bytes(b"hello, static\n")
    (root / "index.html").write_bytes(b"<h1>home</h1>\n")
    (root / "digits.txt").write_bytes(b"0123456789")
    (root / "empty.txt").write_bytes(b"")
    (root / "css" / "site.css").write_bytes(b"body { color: red }\n")
    (root / "docs" / "guide.txt").write_bytes(b"guide\n")
    (root / "docs" / "<b>&'odd' name?.txt").write_bytes(b"odd\n")
    (root / ".env").write_bytes(b"DOTENV-SECRET")
    (root / "notes.bak").write_bytes(b"BACKUP-SECRET")
    (root / "app.js").write_bytes(b"console.log('hi');\n" * 100)
    (root / "app.js.gz").write_bytes(gzip.compress((root / "app.js").read_bytes(), mtime=0))
    (root / "app.js.br").write_bytes(b"stored brotli bytes")
    (root / "inside-link.txt").symlink_to(root / "hello.txt")
    (root / "outside-link.txt").symlink_to(base / "outside.txt")
    (root / "etc").symlink_to("/etc")
    generator = random.Random(1)
    (root / "one.bin").write_bytes(generator.randbytes(MiB))
    (root / "fifty.bin").write_bytes(generator.randbytes(50 * MiB))
    return root.resolve()


@pytest.fixture(scope="module")
def live(tree: Path) -> Iterator[LiveServer]:
    env = {"CELLO_TEST_STATIC_ROOT": str(tree)}
    with LiveServer("tests.apps.static_files:app", "--env", "production", env=env) as server:
        yield server


@pytest.fixture
def files(request: pytest.FixtureRequest, door: str, tree: Path) -> Iterator[httpx.Client]:
    if door == "native":
        server: LiveServer = request.getfixturevalue("live")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    else:
        with TestClient(make_app(str(tree))) as client:
            yield client


def ordinary_404(path: str, method: str = "GET") -> dict[str, object]:
    return {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": f"no route for {method} {path}",
        "instance": path,
    }


# -- serving -------------------------------------------------------------------


def test_a_file_comes_with_its_type_length_validators_and_configured_headers(files):
    response = files.get("/static/hello.txt")
    assert response.status_code == 200
    assert response.content == b"hello, static\n"
    headers = response.headers
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == "14"
    assert headers["accept-ranges"] == "bytes"
    assert re.fullmatch(r'"e-[0-9a-f]+"', headers["etag"])
    assert headers["last-modified"].endswith(" GMT")
    assert headers["cache-control"] == "public, max-age=3600"
    assert headers["x-static"] == "1"
    assert "vary" not in headers  # precompressed variants are off under /static
    assert files.get("/static/css/site.css").headers["content-type"] == "text/css; charset=utf-8"
    assert files.get("/static/one.bin").headers["content-type"] == "application/octet-stream"


def test_head_gives_the_get_headers_without_a_body(files):
    get = files.get("/static/hello.txt")
    head = files.head("/static/hello.txt")
    assert head.status_code == 200
    assert head.content == b""
    assert dict(head.headers) | {"date": ""} == dict(get.headers) | {"date": ""}


def test_an_empty_file_is_served_empty(files):
    response = files.get("/static/empty.txt")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == "0"


def test_a_symlink_inside_the_root_is_followed(files):
    assert files.get("/static/inside-link.txt").content == b"hello, static\n"


def test_a_second_prefix_serves_the_same_folder_with_its_own_settings(files):
    response = files.get("/assets/hello.txt")
    assert response.content == b"hello, static\n"
    assert "cache-control" not in response.headers
    assert "x-static" not in response.headers
    assert response.headers["vary"] == "accept-encoding"


# -- what is not a static file -------------------------------------------------


def test_a_missing_file_falls_through_to_routing(files):
    assert files.get("/static/generated.txt").json() == "from a route"
    missing = files.get("/static/missing.txt")
    assert missing.status_code == 404
    assert missing.json() == ordinary_404("/static/missing.txt")


def test_other_methods_go_on_to_routing(files):
    assert files.post("/static/hello.txt").json() == {"posted": True}
    refused = files.put("/static/hello.txt")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    assert files.delete("/static/css/site.css").status_code == 404


def test_hidden_files_get_the_ordinary_404(files):
    for path in ["/static/.env", "/static/notes.bak", "/assets/.env"]:
        response = files.get(path)
        assert response.status_code == 404, path
        assert response.json() == ordinary_404(path)
    # The hide pattern belongs to /static only.
    assert files.get("/assets/notes.bak").content == b"BACKUP-SECRET"


# -- directories ---------------------------------------------------------------


def test_a_directory_serves_its_index_at_its_slash(files):
    assert files.get("/static/").content == b"<h1>home</h1>\n"
    redirect = files.get("/static?x=1")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "/static/?x=1"


def test_a_directory_without_an_index_is_a_404_unless_listed(files):
    assert files.get("/static/docs/").json() == ordinary_404("/static/docs/")
    assert files.get("/static/docs").status_code == 404
    listing = files.get("/assets/docs/")
    assert listing.status_code == 200
    assert listing.headers["content-type"] == "text/html; charset=utf-8"
    page = listing.text
    assert "<title>Index of /assets/docs/</title>" in page
    assert '<a href="./guide.txt">guide.txt</a>' in page
    # The name is escaped in the text and percent-encoded in the link.
    assert (
        '<a href="./%3Cb%3E%26%27odd%27%20name%3F.txt">&lt;b&gt;&amp;&#39;odd&#39; name?.txt</a>'
        in page
    )
    assert '<a href="../">../</a>' in page
    assert files.get("/assets/docs/%3Cb%3E%26%27odd%27%20name%3F.txt").content == b"odd\n"
    root_listing = files.get("/assets/").text
    assert ".env" not in root_listing and "outside-link" not in root_listing
    assert '"./etc/"' not in root_listing
    assert files.get("/assets/docs").headers["location"] == "/assets/docs/"


# -- conditional requests ------------------------------------------------------


def test_a_matching_validator_gives_304_with_the_validators_and_no_body(files):
    first = files.get("/static/hello.txt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in [
        {"if-none-match": etag},
        {"if-none-match": f"W/{etag}"},
        {"if-none-match": f'"other", {etag}'},
        {"if-none-match": "*"},
        {"if-modified-since": modified},
    ]:
        response = files.get("/static/hello.txt", headers=headers)
        assert response.status_code == 304, headers
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["last-modified"] == modified
        assert response.headers["cache-control"] == "public, max-age=3600"
        assert "content-length" not in response.headers


def test_a_validator_that_does_not_match_gives_the_file(files):
    modified = files.get("/static/hello.txt").headers["last-modified"]
    for headers in [
        {"if-none-match": '"other"'},
        {"if-none-match": '"other"', "if-modified-since": modified},
        {"if-none-match": "not-a-tag"},
        {"if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"if-modified-since": "the day before yesterday"},
        {"if-modified-since": "Fri, 01 Jan 2100 25:61:00 GMT"},
    ]:
        response = files.get("/static/hello.txt", headers=headers)
        assert response.status_code == 200, headers
        assert response.content == b"hello, static\n"


# -- ranges --------------------------------------------------------------------

RANGES = [
    ("bytes=0-3", 206, "bytes 0-3/10", b"0123"),
    ("bytes=7-", 206, "bytes 7-9/10", b"789"),
    ("bytes=-2", 206, "bytes 8-9/10", b"89"),
    ("bytes=4-400", 206, "bytes 4-9/10", b"456789"),
    ("bytes=-50", 206, "bytes 0-9/10", b"0123456789"),
    ("bytes=0-1,4-5", 200, None, b"0123456789"),
    ("bytes=abc", 200, None, b"0123456789"),
    ("items=1-2", 200, None, b"0123456789"),
    ("bytes=5-1", 200, None, b"0123456789"),
    ("bytes=-", 200, None, b"0123456789"),
    ("bytes=1-2-3", 200, None, b"0123456789"),
    ("bytes=99999999999999999999999999-", 200, None, b"0123456789"),
    ("bytes=0-99999999999999999999999999", 200, None, b"0123456789"),
]


@pytest.mark.parametrize("range_, status, content_range, body", RANGES, ids=[r[0] for r in RANGES])
def test_a_range_gives_206_and_anything_else_the_whole_file(
    files, range_, status, content_range, body
):
    response = files.get("/static/digits.txt", headers={"range": range_})
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))


@pytest.mark.parametrize("range_", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_a_range_outside_the_file_gives_416(files, range_):
    response = files.get("/static/digits.txt", headers={"range": range_})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */10"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 416 and problem["instance"] == "/static/digits.txt"


def test_if_range_honours_the_range_only_while_the_file_is_unchanged(files):
    first = files.get("/static/digits.txt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    cases = [(etag, 206), (modified, 206), ('"stale"', 200), (f"W/{etag}", 200), ("nonsense", 200)]
    for validator, status in cases:
        response = files.get(
            "/static/digits.txt", headers={"range": "bytes=2-3", "if-range": validator}
        )
        assert response.status_code == status, validator
        assert response.content == (b"23" if status == 206 else b"0123456789")


def test_head_with_a_range_gives_the_206_headers(files):
    response = files.head("/static/digits.txt", headers={"range": "bytes=2-3"})
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 2-3/10"
    assert response.headers["content-length"] == "2"
    assert response.content == b""


# -- precompressed variants ----------------------------------------------------


def test_a_stored_gzip_or_brotli_file_goes_to_clients_that_accept_it(files, tree):
    original = (tree / "app.js").read_bytes()
    plain = files.get("/assets/app.js", headers={"accept-encoding": "identity"})
    assert plain.content == original and "content-encoding" not in plain.headers

    gz = files.get("/assets/app.js", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.content == original  # httpx decodes it
    assert gz.headers["content-length"] == str((tree / "app.js.gz").stat().st_size)

    with files.stream("GET", "/assets/app.js", headers={"accept-encoding": "br, gzip"}) as br:
        assert br.headers["content-encoding"] == "br"
        assert b"".join(br.iter_raw()) == b"stored brotli bytes"

    refused = files.get("/assets/app.js", headers={"accept-encoding": "br;q=0, gzip;q=0"})
    assert "content-encoding" not in refused.headers
    for response in (plain, gz, br, refused):
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["vary"] == "accept-encoding"
    assert len({r.headers["etag"] for r in (plain, gz, br)}) == 3


def test_a_range_of_a_precompressed_file_is_a_range_of_its_stored_bytes(files):
    headers = {"accept-encoding": "br", "range": "bytes=0-5"}
    with files.stream("GET", "/assets/app.js", headers=headers) as response:
        assert response.status_code == 206
        assert response.headers["content-range"] == "bytes 0-5/19"
        assert b"".join(response.iter_raw()) == b"stored"


# -- large files ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["one.bin", "fifty.bin"])
def test_large_files_arrive_byte_exact(files, tree, name):
    expected = hashlib.sha256((tree / name).read_bytes()).hexdigest()
    digest = hashlib.sha256()
    size = 0
    with files.stream("GET", f"/static/{name}") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str((tree / name).stat().st_size)
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
    assert size == (tree / name).stat().st_size
    assert digest.hexdigest() == expected


def test_a_range_deep_inside_a_large_file(files, tree):
    start, end = 30 * MiB + 12345, 31 * MiB + 999
    response = files.get("/static/fifty.bin", headers={"range": f"bytes={start}-{end}"})
    assert response.status_code == 206
    with (tree / "fifty.bin").open("rb") as f:
        f.seek(start)
        assert response.content == f.read(end - start + 1)


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))


def stream_through(url: str) -> int:
    size = 0
    with httpx.stream("GET", url, timeout=60) as response:
        for chunk in response.iter_raw():
            size += len(chunk)
    return size


def test_the_native_server_sends_a_large_file_in_constant_memory(live):
    assert live.process is not None
    stream_through(f"{live.url}/static/one.bin")  # warm up
    before = peak_rss_kib(live.process.pid)
    assert stream_through(f"{live.url}/static/fifty.bin") == 50 * MiB
    assert peak_rss_kib(live.process.pid) - before < 16 * 1024


# -- path safety ---------------------------------------------------------------

ATTACKS = [
    "/static/../app.py",
    "/static/../../app.py",
    "/static/..",
    "/static/../",
    "/static/css/../../app.py",
    "/static/./../app.py",
    "/static/%2e%2e/app.py",
    "/static/%2E%2e/app.py",
    "/static/%2e%2E/%2e%2e/etc/passwd",
    "/static/.%2e/app.py",
    "/static/%2e./app.py",
    "/static/css/.%2e/.%2e/app.py",
    "/static/..%2fapp.py",
    "/static/..%2Fapp.py",
    "/static/css%2f..%2f..%2fapp.py",
    "/static/%2fetc%2fpasswd",
    "/static/..%5capp.py",
    "/static/..%5Capp.py",
    "/static/..\\app.py",
    "/static/css\\..\\..\\app.py",
    "/static/%252e%252e/app.py",
    "/static/%252e%252e%252fapp.py",
    "/static/%c0%ae%c0%ae/app.py",
    "/static/%c0%ae%c0%ae%c0%afapp.py",
    "/static/%e0%80%ae%e0%80%ae/app.py",
    "/static/hello.txt%00.png",
    "/static/%00../app.py",
    "/static//etc/passwd",
    "/static///etc/passwd",
    "/static/etc/passwd",
    "/static/etc/hostname",
    "/static/outside-link.txt",
    "/static/.env",
    "/static/%2eenv",
    "/static/notes.bak",
    "/static/hello.txt.",
    "/static/hello.txt%20",
    "/static/...",
    "/static/..../app.py",
    "/st%61tic%2f..%2fapp.py",
    "/static%2f..%2fapp.py",
    "/assets/../app.py",
    "/assets/etc/passwd",
    "/assets/outside-link.txt",
]


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """A request whose target goes on the wire exactly as written."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def assert_refused(status: int, body: bytes, target: str) -> None:
    assert status == 404, f"{target}: {status} {body[:200]!r}"
    assert not any(secret in body for secret in SECRETS), target
    problem = json.loads(body)
    assert problem["title"] == "Not Found" and problem["detail"].startswith("no route for GET ")


@pytest.mark.parametrize("target", ATTACKS)
def test_traversal_over_a_raw_socket_is_refused(live, target):
    assert_refused(*raw_get(live.port, target), target)


def asgi_get(app: App, target: str) -> tuple[int, bytes]:
    """The app called with a scope built as an ASGI server builds one, so
    no client tidies the path first."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(target),
        "raw_path": target.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]
    return status, body  # type: ignore[return-value]


def test_traversal_through_the_asgi_door_is_refused(tree):
    app = make_app(str(tree))
    for target in ATTACKS:
        assert_refused(*asgi_get(app, target), target)
    with TestClient(app) as client:
        for target in ATTACKS:
            response = client.get(target)
            assert_refused(response.status_code, response.content, target)


# -- under uvicorn ----------------------------------------------------------------


def test_under_uvicorn(tree):
    env = {**os.environ, "CELLO_TEST_STATIC_ROOT": str(tree), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "uvicorn", "tests.apps.static_files:app", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"running on (http://\S+)", line, re.IGNORECASE)
            if match and not url:
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(30), "uvicorn did not start"
        base = url[0]
        assert httpx.get(f"{base}/static/hello.txt").content == b"hello, static\n"
        ranged = httpx.get(f"{base}/static/digits.txt", headers={"range": "bytes=-3"})
        assert (ranged.status_code, ranged.content) == (206, b"789")
        assert httpx.get(f"{base}/static/..%2fapp.py").status_code == 404
        stream_through(f"{base}/static/one.bin")
        before = peak_rss_kib(process.pid)
        assert stream_through(f"{base}/static/fifty.bin") == 50 * MiB
        # Door 2 reads the file in chunks as uvicorn sends them.
        assert peak_rss_kib(process.pid) - before < 16 * 1024
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(15)
        reader.join(5)
        assert process.stdout is not None
        process.stdout.close()


# -- configuration ---------------------------------------------------------------


def test_the_config_is_exported_from_cello_and_cello_middleware():
    assert StaticFilesConfig is FromMiddleware


def test_both_argument_orders_mean_the_same(tree):
    impl = StaticFilesConfig(str(tree), "/files")
    docs = StaticFilesConfig("/files", str(tree))
    assert (impl.root, impl.prefix) == (docs.root, docs.prefix) == (str(tree), "/files")
    default = StaticFilesConfig(str(tree))
    assert default.prefix == "/static" and default.index_file == "index.html"
    assert (default.enable_etag, default.enable_last_modified) == (True, True)
    assert (default.cache_control, default.directory_listing) == (None, False)


def test_an_absolute_root_and_prefix_are_told_apart_by_the_filesystem(tree):
    # Both start with "/": the existing directory is the root.
    assert StaticFilesConfig("/files", str(tree)).root == str(tree)
    assert StaticFilesConfig(str(tree), "/files").prefix == "/files"


def test_a_root_prefix_serves_every_path_beside_the_routes(tree):
    app = App()
    app.enable_static_files(StaticFilesConfig(str(tree), "/"))
    assert StaticFilesConfig("/", str(tree)).prefix == "/"

    @app.get("/api")
    def api() -> dict[str, int]:
        return {"api": 1}

    with TestClient(app) as client:
        assert client.get("/hello.txt").content == b"hello, static\n"
        assert client.get("/").content == b"<h1>home</h1>\n"
        assert client.get("/api").json() == {"api": 1}
        assert client.get("/%2e%2e/app.py").json() == ordinary_404("/../app.py")


def test_keyword_aliases(tree):
    for config in [
        StaticFilesConfig(root=str(tree), prefix="/p"),
        StaticFilesConfig(directory=str(tree), prefix="/p"),
        StaticFilesConfig(root_dir=str(tree), url_path="/p"),
        StaticFilesConfig(url_path="/p", root_dir=tree),
        StaticFilesConfig("/p", root_dir=str(tree)),
    ]:
        assert (config.root, config.prefix) == (str(tree), "/p")
    assert StaticFilesConfig(str(tree), cache_max_age=60).cache_control == "public, max-age=60"


def test_the_impl_s_later_positional_arguments(tree):
    config = StaticFilesConfig(str(tree), "/p", "home.html", False, False, "no-cache", True)
    assert config.index_file == "home.html"
    assert (config.enable_etag, config.enable_last_modified) == (False, False)
    assert (config.cache_control, config.directory_listing) == ("no-cache", True)
    assert StaticFilesConfig(str(tree), "/p", None).index_file is None


def test_a_relative_root_is_resolved_once(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    config = StaticFilesConfig("root", "/p")
    assert config.root == str(tree)
    monkeypatch.chdir("/")
    assert config.root == str(tree)


def test_builders_chain_and_set_the_options(tree):
    config = StaticFilesConfig("/p", str(tree))
    returned = (
        config.cache_str("7d")
        .etag(False)
        .dir_listing()
        .index("home.html")
        .precompressed()
        .header("X-A", "1")
        .header("X-B", "2")
        .hide_pattern("*.bak")
        .hide_pattern("drafts/**")
    )
    assert returned is config
    kind, options = config._layer()
    assert kind == "static_files"
    assert options == {
        "root": str(tree),
        "prefix": "/p",
        "index_file": "home.html",
        "etag": False,
        "last_modified": True,
        "cache_control": "7d",
        "directory_listing": True,
        "precompressed": True,
        "headers": [("X-A", "1"), ("X-B", "2")],
        "hide": ["*.bak", "drafts/**"],
    }
    assert config.no_index().index_file is None
    assert config.etag().enable_etag is True


@pytest.mark.parametrize(
    "setting, expected",
    [("30s", "public, max-age=30"), ("10m", "public, max-age=600"), ("1h", "public, max-age=3600"),
     ("7d", "public, max-age=604800"), ("1y", "public, max-age=31536000"),
     ("120", "public, max-age=120"), ("no-store", "no-store"),
     ("public, max-age=5, immutable", "public, max-age=5, immutable")],
)  # fmt: skip
def test_cache_settings_are_durations_or_literal_values(tree, setting, expected):
    app = App()
    app.enable_static_files(StaticFilesConfig(str(tree), "/s").cache_str(setting))
    with TestClient(app) as client:
        assert client.get("/s/hello.txt").headers["cache-control"] == expected


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: StaticFilesConfig("nope/not/here", "/s"), "'nope/not/here' does not exist"),
        (lambda t: StaticFilesConfig(root="/nope/not/here"), "'/nope/not/here' does not exist"),
        (lambda t: StaticFilesConfig(str(t / "hello.txt"), "/s"), "hello.txt' is not a directory"),
        (lambda t: StaticFilesConfig(root_dir=t / "hello.txt"), "hello.txt' is not a directory"),
        (lambda t: StaticFilesConfig("/a", "/b"), "neither is an existing directory"),
        (lambda t: StaticFilesConfig("relative", "also"), "neither is an existing directory"),
        (lambda t: StaticFilesConfig(str(t), str(t / "css")), "both are existing directories"),
        (lambda t: StaticFilesConfig(str(t), "static"), "must be a URL path starting with '/'"),
        (lambda t: StaticFilesConfig(str(t), "/a/../b"), "must be a plain path"),
        (lambda t: StaticFilesConfig(str(t), "/a//b"), "must be a plain path"),
        (lambda t: StaticFilesConfig(str(t), "/a%2fb"), "must be a plain path"),
        (lambda t: StaticFilesConfig(prefix="/s"), "needs a root directory"),
        (lambda t: StaticFilesConfig(str(t), index_file="../x.html"), "index_file"),
        (lambda t: StaticFilesConfig(str(t), enable_etag="yes"), "enable_etag"),
        (lambda t: StaticFilesConfig(str(t), cache_max_age=-1), "cache_max_age"),
        (lambda t: StaticFilesConfig(str(t), cache_max_age=True), "cache_max_age"),
        (lambda t: StaticFilesConfig(str(t), cache_control="1h", cache_max_age=1), "not both"),
        (lambda t: StaticFilesConfig(str(t)).cache_str(""), "cache_control"),
        (lambda t: StaticFilesConfig(str(t)).cache_str("a\r\nb: c"), "line breaks"),
        (lambda t: StaticFilesConfig(str(t)).index(""), "index_file"),
        (lambda t: StaticFilesConfig(str(t)).index(".hidden"), "index_file"),
        (lambda t: StaticFilesConfig(str(t)).header("X-A", 1), "header()"),
        (lambda t: StaticFilesConfig(str(t)).hide_pattern(""), "hide_pattern()"),
        (lambda t: StaticFilesConfig(str(t)).precompressed("yes"), "precompressed"),
    ],
)
def test_bad_configuration_is_a_value_error_naming_the_option(tree, make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make(tree)


@pytest.mark.parametrize(
    "configure, message",
    [
        (lambda c: c.cache_str("1 fortnight"), "'cache_control': \"1 fortnight\": unknown unit"),
        (lambda c: c.header("bad name", "x"), "'header': \"bad name\" is not a header name"),
        (lambda c: c.header("x-a", "caf\u00e9\x01"), "'header'"),
    ],
)
def test_what_only_the_native_layer_can_check_is_a_value_error_when_enabled(
    tree, configure, message
):
    config = configure(StaticFilesConfig(str(tree), "/s"))
    with pytest.raises(ValueError, match=re.escape(message)):
        App().enable_static_files(config)


def test_arguments_given_twice_are_a_type_error(tree):
    with pytest.raises(TypeError, match="both by position and by name"):
        StaticFilesConfig(str(tree), "/s", root=str(tree))
    with pytest.raises(TypeError, match="root twice"):
        StaticFilesConfig(root=str(tree), directory=str(tree))
    with pytest.raises(TypeError, match="two values for 'index_file'"):
        StaticFilesConfig(str(tree), "/s", "a.html", index_file="b.html")
    with pytest.raises(TypeError, match="at most 7"):
        StaticFilesConfig(str(tree), "/s", "i.html", True, True, None, False, "extra")
    with pytest.raises(TypeError, match="takes a StaticFilesConfig"):
        App().enable_static_files("public")  # type: ignore[arg-type]


def test_the_layer_shows_in_the_app_s_layers(tree):
    app = App()
    app.enable_static_files(StaticFilesConfig(str(tree), "/a"))
    app.use(StaticFilesConfig("/b", str(tree)))
    assert [name for name, _ in app._core.layers()] == ["StaticFiles", "StaticFiles"]
