"""Response compression through the public API: negotiation, what is and is
not compressed, headers, streams (flushed chunk by chunk) and mounted apps,
through the native server and the app called as ASGI (plus uvicorn for the
server-sent events timing). Bodies are decoded with Python's own gzip,
brotli and zstandard, not with the encoders under test."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from collections.abc import Callable, Iterator

import brotli
import httpx
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from cello import App, Response
from cello.middleware import CompressionConfig
from cello.testing import TestClient
from conformance.doors import UvicornDoor
from tests.apps import compression as apps
from tests.live import LiveServer

CODINGS = ["gzip", "br", "zstd"]


def decode(coding: str | None, data: bytes) -> bytes:
    """The decoded body; raises unless ``data`` is one complete stream."""
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        decoder = zstandard.ZstdDecompressor().decompressobj()
        out = decoder.decompress(data)
        assert decoder.eof, "the zstd frame is incomplete"
        return out
    raise AssertionError(f"unexpected coding {coding!r}")


def _plain_client(client: httpx.Client) -> httpx.Client:
    # httpx offers every coding it can decode by default; each test here
    # says what it accepts.
    client.headers.pop("accept-encoding", None)
    return client


@pytest.fixture(scope="module")
def compression_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.compression:app", "--env", "production") as live:
        yield live


@pytest.fixture(scope="module")
def scoped_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.compression:scoped", "--env", "production") as live:
        yield live


def _client_for(request: pytest.FixtureRequest, door: str, server: str, app: App):
    if door == "native":
        live: LiveServer = request.getfixturevalue(server)
        return httpx.Client(base_url=live.url, timeout=10)
    return TestClient(app)


@pytest.fixture
def cc(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    with _client_for(request, door, "compression_server", apps.app) as client:
        yield _plain_client(client)


@pytest.fixture
def scoped(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    with _client_for(request, door, "scoped_server", apps.scoped) as client:
        yield _plain_client(client)


class Got:
    """A response with its body as sent (still encoded)."""

    def __init__(self, response: httpx.Response, raw: bytes) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.raw = raw

    @property
    def coding(self) -> str | None:
        return self.headers.get("content-encoding")

    @property
    def vary(self) -> list[str]:
        return self.headers.get_list("vary")

    @property
    def body(self) -> bytes:
        return decode(self.coding, self.raw)


def fetch(client: httpx.Client, path: str, accept: str | bytes | None, method: str = "GET") -> Got:
    headers = [] if accept is None else [(b"accept-encoding", _bytes(accept))]
    with client.stream(method, path, headers=headers) as response:
        return Got(response, b"".join(response.iter_raw()))


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def identity_body(path: str) -> bytes:
    return {
        "/json": json.dumps(apps.ITEMS, separators=(",", ":")).encode(),
        "/big": apps.BIG,
        "/stream": "".join(apps.LINES).encode(),
        "/async-stream": "".join(apps.LINES).encode(),
        "/star/stream": "".join(apps.LINES).encode(),
        "/file": apps.FILE.read_bytes(),
    }[path]


# -- negotiation --------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
def test_each_coding_compresses_a_json_body(cc, coding):
    plain = fetch(cc, "/json", "identity")
    got = fetch(cc, "/json", coding)
    assert got.status == 200
    assert got.coding == coding
    assert got.vary == ["Accept-Encoding"]
    assert int(got.headers["content-length"]) == len(got.raw) < len(plain.raw) // 3
    assert got.body == plain.raw
    assert json.loads(got.body) == apps.ITEMS


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip;q=0.5, br;q=0.9", "br"),
        ("gzip;q=1.0, br;q=0.5, zstd;q=0.1", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),  # a browser's: a tie, the server's order
        ("gzip, br", "br"),
        ("br;q=0.5, gzip;q=0.5", "br"),
        ("*", "zstd"),
        ("*;q=0.1, zstd;q=0", "br"),
        ("*;q=0, gzip", "gzip"),
        ("identity;q=0, gzip", "gzip"),
        ("gzip;q=0.4, identity", None),
        ("gzip;q=0", None),
        ("x-gzip", "gzip"),
        ("GZIP", "gzip"),
        ("br ;  q=0.8,  gzip ; q=0.7", "br"),
        ("deflate, compress", None),
        ("identity", None),
        ("", None),
    ],
)
def test_accept_encoding_weights_choose_the_coding(cc, accept, expected):
    got = fetch(cc, "/json", accept)
    assert got.coding == expected
    assert got.vary == ["Accept-Encoding"], "the answer depended on the header either way"
    assert json.loads(got.body) == apps.ITEMS


def test_no_accept_encoding_gets_the_body_as_it_is_and_vary(cc):
    got = fetch(cc, "/json", None)
    assert got.coding is None
    assert got.vary == ["Accept-Encoding"]
    assert got.raw == identity_body("/json")


MALFORMED = [
    "gzip;q=abc",
    "gzip;q=2",
    "gzip;q=1.5",
    "gzip;q=-0.5",
    "gzip;q=0.12345",
    "gzip;q=",
    "gzip;q",
    "gzip;=",
    ";q=1",
    ",,,",
    ";;;",
    "g zip",
    "@@@@",
    "gzip;;;;q=0.5",
    "q=1",
    "=",
    "*;q=nan",
    "gzip;q=1e0",
    "br;q=0x1",
    "zstd;q=inf",
    "gzip, " + "x;q=0.5, " * 600 + "br",  # too long to read at all
    b"gzip, br\xff",  # not ASCII
    b"\x80\x81",
    "gzip\t;\tq=0.5",  # tabs are whitespace: well-formed
]


@pytest.mark.parametrize("accept", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_accept_encoding_never_fails(cc, accept):
    got = fetch(cc, "/json", accept)
    assert got.status == 200
    assert got.coding in (None, *CODINGS)
    assert json.loads(got.body) == apps.ITEMS


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip;q=abc", None),  # its only entry is skipped
        ("gzip;q=2", None),
        ("gzip;q=abc, br;q=0.1", "br"),  # the rest still counts
        ("@@@, , zstd", "zstd"),
        (b"gzip, br\xff", None),  # unreadable as a whole
        ("gzip, " + "x;q=0.5, " * 600 + "br", None),
        ("gzip\t;\tq=0.5", "gzip"),
    ],
)
def test_malformed_entries_are_skipped_and_a_malformed_header_means_identity(cc, accept, expected):
    assert fetch(cc, "/json", accept).coding == expected


# -- what is left alone ---------------------------------------------------------


def test_min_size_is_inclusive(cc):
    below = fetch(cc, "/sized/1023", "gzip")
    assert below.coding is None
    assert below.vary == [], "too small for any client: nothing to vary on"
    assert below.raw == b"x" * 1023
    at = fetch(cc, "/sized/1024", "gzip")
    assert at.coding == "gzip"
    assert at.body == b"x" * 1024
    assert fetch(cc, "/small", "gzip").coding is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/png", "an image"),
        ("/no-transform", "Cache-Control: no-transform"),
        ("/stream-bytes", "a streamed application/octet-stream"),
    ],
)
def test_bodies_that_must_not_or_need_not_be_compressed_are_sent_unchanged(cc, path, why):
    plain = fetch(cc, path, "identity")
    got = fetch(cc, path, "gzip, br, zstd")
    assert got.coding is None, why
    assert got.vary == [], why
    assert got.raw == plain.raw, why


def test_an_already_encoded_body_is_not_encoded_again(cc):
    got = fetch(cc, "/encoded", "gzip, br, zstd")
    assert got.headers.get_list("content-encoding") == ["gzip"]
    assert got.raw == gzip.compress(apps.TEXT.encode(), mtime=0)
    assert got.vary == []


def test_a_partial_response_is_not_compressed(cc):
    got = fetch(cc, "/partial", "gzip")
    assert got.status == 206
    assert got.coding is None
    assert got.headers["content-range"].startswith("bytes 0-2999/")
    assert got.raw == apps.TEXT[:3000].encode()


def test_head_gets_no_body_and_no_encoding_it_would_not_match(cc):
    got = fetch(cc, "/json", "gzip", method="HEAD")
    assert got.status == 200
    assert got.raw == b""
    assert got.coding is None
    # The length a GET without compression gets, not a compressed one.
    assert got.headers.get("content-length") in (None, str(len(identity_body("/json"))))


def test_a_body_that_would_grow_is_sent_as_it_is():
    # Random bytes labelled text: nothing to gain, so the original goes out.
    app = App()
    app.enable_compression(min_size=0)
    noise = random.Random(7).randbytes(4096)

    @app.get("/noise")
    def noise_handler():
        return Response(noise, content_type="text/plain")

    with TestClient(app) as client:
        got = fetch(_plain_client(client), "/noise", "gzip")
    assert got.coding is None
    assert got.raw == noise
    assert got.vary == ["Accept-Encoding"]


# -- headers ---------------------------------------------------------------------


def test_vary_is_merged_with_the_handler_s(cc):
    got = fetch(cc, "/vary", "gzip")
    assert got.coding == "gzip"
    assert got.vary == ["Origin", "Accept-Encoding"]


def test_a_strong_etag_becomes_weak_only_when_the_bytes_change(cc):
    assert fetch(cc, "/etag", "br").headers["etag"] == 'W/"items-v1"'
    assert fetch(cc, "/etag", "identity").headers["etag"] == '"items-v1"'


def test_the_framework_404_is_compressed_when_large_enough(cc):
    short = fetch(cc, "/nope", "gzip")
    assert short.status == 404
    assert short.coding is None
    assert json.loads(short.raw)["instance"] == "/nope"
    path = "/nope/" + "a" * 1100
    long = fetch(cc, path, "gzip")
    assert long.status == 404
    assert long.coding == "gzip"
    assert long.headers["content-type"] == "application/problem+json"
    assert json.loads(long.body)["instance"] == path


@pytest.mark.parametrize("coding", CODINGS)
def test_a_mebibyte_of_json_round_trips_exactly(cc, coding):
    got = fetch(cc, "/big", coding)
    assert got.coding == coding
    assert int(got.headers["content-length"]) == len(got.raw)
    assert got.body == apps.BIG


# -- streams and mounted apps ---------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("path", ["/stream", "/async-stream", "/file", "/star/stream"])
def test_streamed_bodies_are_compressed(cc, path, coding):
    got = fetch(cc, path, coding)
    assert got.status == 200
    assert got.coding == coding
    assert got.vary == ["Accept-Encoding"]
    assert got.body == identity_body(path)
    if "content-length" in got.headers:  # the in-process door buffers a file
        assert int(got.headers["content-length"]) == len(got.raw)


def test_a_mounted_app_s_whole_body_is_compressed_and_framed_anew(cc):
    got = fetch(cc, "/star/json", "zstd")
    assert got.coding == "zstd"
    assert int(got.headers["content-length"]) == len(got.raw)
    assert json.loads(got.body) == apps.ITEMS
    small = fetch(cc, "/star/small", "zstd")
    assert small.coding is None
    assert json.loads(small.raw) == {"ok": True}


class _Incremental:
    """Decodes a body as its pieces arrive."""

    def __init__(self, coding: str) -> None:
        if coding == "gzip":
            zlib_decoder = zlib.decompressobj(wbits=31)
            self.feed: Callable[[bytes], bytes] = zlib_decoder.decompress
        elif coding == "br":
            self.feed = brotli.Decompressor().process
        else:
            self.feed = zstandard.ZstdDecompressor().decompressobj().decompress


def _first_event_before_the_second_is_made(base_url: str, path: str, coding: str) -> None:
    with (
        httpx.Client(base_url=base_url, timeout=10) as client,
        httpx.Client(base_url=base_url, timeout=10) as control,
        client.stream("GET", path, headers={"accept-encoding": coding}) as response,
    ):
        assert response.headers["content-encoding"] == coding
        assert "content-length" not in response.headers
        decoder = _Incremental(coding)
        seen = b""
        chunks = response.iter_raw()
        # The generator is parked until /release: if the first event were
        # held back in the compressor, this read would time out.
        while b"data: first\n\n" not in seen:
            seen += decoder.feed(next(chunks))
        assert seen == b"data: first\n\n"
        assert control.post("/release").json() == {"released": True}
        for chunk in chunks:
            seen += decoder.feed(chunk)
        assert seen == b"data: first\n\ndata: second\n\n"


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("path", ["/events", "/star/events"])
def test_each_event_arrives_as_it_is_sent_natively(compression_server, path, coding):
    _first_event_before_the_second_is_made(compression_server.url, path, coding)


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[str]:
    door = UvicornDoor("tests.apps.compression:app")
    door.start()
    try:
        yield str(door.client.base_url).rstrip("/")
    finally:
        door.stop()


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("path", ["/events", "/star/events"])
def test_each_event_arrives_as_it_is_sent_under_uvicorn(uvicorn_url, path, coding):
    _first_event_before_the_second_is_made(uvicorn_url, path, coding)


# -- configuration ---------------------------------------------------------------


def test_a_blueprint_compresses_its_own_paths_with_its_own_settings(scoped):
    got = fetch(scoped, "/reports/daily", "br, gzip")
    assert got.coding == "gzip", "only gzip is offered there"
    assert json.loads(got.body) == apps.ITEMS
    refused = fetch(scoped, "/reports/daily", "br")
    assert refused.coding is None
    assert refused.vary == ["Accept-Encoding"]
    outside = fetch(scoped, "/plain", "gzip")
    assert outside.coding is None
    assert outside.vary == []
    # Its min_size (100) lets the framework's 404 below it be compressed.
    missing = fetch(scoped, "/reports/" + "x" * 120, "gzip")
    assert missing.status == 404
    assert missing.coding == "gzip"
    assert json.loads(missing.body)["status"] == 404


def _served(config: CompressionConfig | None, min_size: int | None = None) -> httpx.Client:
    app = App()
    if config is None:
        app.enable_compression(min_size)
    else:
        app.use(config)

    @app.get("/text/{n}")
    def text(request):
        return Response.text("y" * int(request.params["n"]))

    return _plain_client(TestClient(app))


def test_enable_compression_defaults_to_1024_bytes():
    with _served(None) as client:
        assert fetch(client, "/text/1023", "gzip").coding is None
        assert fetch(client, "/text/1024", "gzip").coding == "gzip"
    with _served(None, min_size=100) as client:
        assert fetch(client, "/text/99", "gzip").coding is None
        assert fetch(client, "/text/100", "gzip").coding == "gzip"


def test_levels_and_encodings_are_applied():
    fast = CompressionConfig(min_size=0, gzip_level=1)
    best = CompressionConfig(min_size=0, gzip_level=9)
    with _served(fast) as a, _served(best) as b:
        quick = fetch(a, "/text/50000", "gzip")
        small = fetch(b, "/text/50000", "gzip")
    assert quick.raw != small.raw
    assert quick.body == small.body == b"y" * 50000
    with _served(CompressionConfig(encodings=["br", "gzip"])) as client:
        assert fetch(client, "/text/5000", "gzip, br, zstd").coding == "br"
        assert fetch(client, "/text/5000", "zstd").coding is None
    with _served(CompressionConfig(encodings="GZIP")) as client:
        assert fetch(client, "/text/5000", "gzip, br, zstd").coding == "gzip"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_size": -1}, "min_size"),
        ({"min_size": "1k"}, "min_size"),
        ({"min_size": True}, "min_size"),
        ({"gzip_level": 0}, "gzip_level"),
        ({"gzip_level": 10}, "gzip_level"),
        ({"brotli_level": 12}, "brotli_level"),
        ({"brotli_level": 4.5}, "brotli_level"),
        ({"zstd_level": 0}, "zstd_level"),
        ({"zstd_level": 20}, "zstd_level"),
        ({"encodings": ["gzip", "deflate"]}, "encodings"),
        ({"encodings": ["x-gzip"]}, "encodings"),
        ({"encodings": []}, "encodings"),
        ({"encodings": 5}, "encodings"),
        ({"encodings": [None]}, "encodings"),
    ],
)
def test_bad_settings_are_a_value_error_naming_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompressionConfig(**kwargs)


def test_enable_compression_refuses_a_bad_min_size():
    with pytest.raises(ValueError, match="min_size"):
        App().enable_compression(-5)


def test_the_native_layer_checks_its_options_too():
    # Options reach Rust from the config class; one built by hand is
    # checked there as well, with the option named.
    class Handmade:
        def __init__(self, options):
            self.options = options

        def _layer(self):
            return "compression", self.options

    for options, message in [
        ({"gzip_level": 42}, "gzip_level"),
        ({"encodings": ["lzma"]}, "encodings"),
        ({"encodings": []}, "encodings"),
        ({"min_size": "big"}, "min_size"),
    ]:
        with pytest.raises(ValueError, match=message):
            App().use(Handmade(options))


def test_repr_shows_the_settings():
    assert repr(CompressionConfig(min_size=10, encodings=["gzip"])) == (
        "CompressionConfig(min_size=10, gzip_level=6, brotli_level=4, zstd_level=3, "
        "encodings=('gzip',))"
    )


_PIECES = st.sampled_from(
    ["gzip", "x-gzip", "br", "zstd", "identity", "*", "deflate", "GZip", ";", ",", "=", "q",
     "q=0", "q=1", "q=0.5", "q=1.0", "q=2", "q=abc", "q=0.0001", " ", "\t", "@", '"', "é"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(header=st.lists(_PIECES, max_size=12).map("".join))
def test_any_accept_encoding_gives_a_readable_body(asgi_app_client, header):
    value = header.strip(" \t").encode()
    got = fetch(asgi_app_client, "/json", value)
    assert got.status == 200
    assert got.coding in (None, *CODINGS)
    assert json.loads(got.body) == apps.ITEMS


@pytest.fixture(scope="module")
def asgi_app_client() -> Iterator[httpx.Client]:
    with TestClient(apps.app) as client:
        yield _plain_client(client)
