"""Compression through every door: the expected coding, headers and decoded
body, and the same compressed bytes from each door (the same encoder runs
behind all of them, fed the same chunks)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import brotli
import pytest
import zstandard

from conformance.doors import HOP_BY_HOP, SERVER_HEADERS, Door, Observed, started_doors
from conformance.middleware import compression_app as source

APP = "conformance.middleware.compression_app:app"


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        for door in started.values():
            # httpx offers every coding it can decode; each case says its own.
            door.client.headers.pop("accept-encoding", None)  # type: ignore[attr-defined]
        yield started


def fetch(door: Door, path: str, accept: str | None, method: str = "GET") -> Observed:
    """The response as sent: the body still encoded, the headers a door
    cannot produce (``date``, ``server``, the in-process door's missing
    ``transfer-encoding``) left out."""
    headers = [] if accept is None else [("accept-encoding", accept)]
    client = door.client  # type: ignore[attr-defined]
    with client.stream(method, path, headers=headers) as response:
        body = b"".join(response.iter_raw())
    ignore = SERVER_HEADERS | HOP_BY_HOP
    kept = sorted((k.lower(), v) for k, v in response.headers.multi_items() if k not in ignore)
    return Observed(response.status_code, tuple(kept), body)


def decode(coding: str | None, data: bytes) -> bytes:
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    decoder = zstandard.ZstdDecompressor().decompressobj()
    out = decoder.decompress(data)
    assert decoder.eof, "the zstd frame is incomplete"
    return out


def _json(rows: object) -> bytes:
    return json.dumps(rows, separators=(",", ":")).encode()


ROWS = _json({"rows": source.ROWS})
STARLETTE_ROWS = json.dumps({"rows": source.ROWS}, ensure_ascii=False, separators=(",", ":"))
LINES = "".join(source.LINES).encode()
EVENTS = "".join(source.EVENTS).encode()

CASES = [
    # (name, path, Accept-Encoding, coding expected, decoded body, Vary expected)
    ("json gzip", "/json", "gzip", "gzip", ROWS, ["Accept-Encoding"]),
    ("json br", "/json", "br", "br", ROWS, ["Accept-Encoding"]),
    ("json zstd", "/json", "zstd", "zstd", ROWS, ["Accept-Encoding"]),
    ("json browser", "/json", "gzip, deflate, br, zstd", "zstd", ROWS, ["Accept-Encoding"]),
    ("json weights", "/json", "gzip;q=0.9, br;q=0.2", "gzip", ROWS, ["Accept-Encoding"]),
    ("json identity", "/json", "identity", None, ROWS, ["Accept-Encoding"]),
    ("json no header", "/json", None, None, ROWS, ["Accept-Encoding"]),
    ("json malformed", "/json", "gzip;q=abc, ;;, br;q=2", None, ROWS, ["Accept-Encoding"]),
    ("html keeps Vary", "/html", "br", "br", source.PAGE.encode(), ["Cookie", "Accept-Encoding"]),
    ("small", "/small", "gzip", None, b'{"ok":true}', []),
    ("png", "/png", "gzip", None, b"\x89PNG\r\n\x1a\n" + bytes(3000), []),
    ("stream gzip", "/stream", "gzip", "gzip", LINES, ["Accept-Encoding"]),
    ("stream br", "/stream", "br", "br", LINES, ["Accept-Encoding"]),
    ("events zstd", "/events", "zstd", "zstd", EVENTS, ["Accept-Encoding"]),
    ("events gzip", "/events", "gzip", "gzip", EVENTS, ["Accept-Encoding"]),
    ("mounted whole", "/star/json", "gzip", "gzip", STARLETTE_ROWS.encode(), ["Accept-Encoding"]),
    ("mounted stream", "/star/stream", "br", "br", LINES, ["Accept-Encoding"]),
    ("mounted identity", "/star/stream", "identity", None, LINES, ["Accept-Encoding"]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_compresses_alike(doors, case):
    name, path, accept, coding, decoded, vary = case
    answers = {}
    for door_name, door in doors.items():
        observed = fetch(door, path, accept)
        assert observed.status == 200, door_name
        headers = dict(observed.headers)
        assert headers.get("content-encoding") == coding, door_name
        assert [v for k, v in observed.headers if k == "vary"] == sorted(vary), door_name
        assert decode(coding, observed.body) == decoded, door_name
        if "content-length" in headers:
            assert int(headers["content-length"]) == len(observed.body), door_name
        answers[door_name] = observed
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_a_strong_etag_is_weakened_alike(doors):
    for door_name, door in doors.items():
        assert dict(fetch(door, "/html", "gzip").headers)["etag"] == 'W/"page-1"', door_name
        assert dict(fetch(door, "/html", "identity").headers)["etag"] == '"page-1"', door_name


@pytest.mark.parametrize("size", [400, 500])
def test_the_framework_404_is_compressed_alike_once_large_enough(doors, size):
    path = "/missing/" + "m" * size
    answers = {}
    for door_name, door in doors.items():
        observed = fetch(door, path, "gzip")
        assert observed.status == 404, door_name
        headers = dict(observed.headers)
        assert headers["content-type"] == "application/problem+json", door_name
        coding = headers.get("content-encoding")
        # The problem holds the path twice: over 1024 bytes with the longer one only.
        assert coding == ("gzip" if size > 400 else None), door_name
        assert json.loads(decode(coding, observed.body))["instance"] == path, door_name
        answers[door_name] = observed
    assert answers["uvicorn"] == answers["native"] == answers["asgi"]


def test_head_carries_no_encoding_in_any_door(doors):
    answers = {}
    for door_name, door in doors.items():
        observed = fetch(door, "/json", "gzip", method="HEAD")
        assert observed.body == b"", door_name
        assert "content-encoding" not in dict(observed.headers), door_name
        answers[door_name] = observed
    assert answers["uvicorn"] == answers["native"] == answers["asgi"]
