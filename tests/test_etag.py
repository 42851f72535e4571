"""ETags and conditional requests (RFC 9110 §13) through the native server
(door 1), the app called as ASGI (door 2), and around a mounted Starlette app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from cello import App
from cello.middleware import ETag, ETagConfig
from cello.testing import TestClient
from tests.apps.etag import MODIFIED, STATIC
from tests.live import LiveServer

TAG = re.compile(r'^"[0-9a-f]{32}"$')
LATER = "Wed, 02 Jul 2025 00:00:00 GMT"
EARLIER = "Tue, 01 Jul 2025 11:59:59 GMT"


@pytest.fixture(scope="module")
def etag_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.etag:app", "--env", "production") as live:
        yield live


@pytest.fixture
def client(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    if door == "native":
        server: LiveServer = request.getfixturevalue("etag_server")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield c
    else:
        from tests.apps.etag import app

        with TestClient(app) as c:
            yield c


def assert_not_modified(response: httpx.Response) -> None:
    assert response.status_code == 304, response.text
    assert response.content == b""


def test_a_whole_body_gets_a_strong_tag_from_its_bytes(client):
    first = client.get("/doc")
    assert first.status_code == 200
    assert first.text == "hello etag"
    assert TAG.match(first.headers["etag"]), first.headers["etag"]
    assert client.get("/doc").headers["etag"] == first.headers["etag"], "stable"
    assert client.get("/other").headers["etag"] != first.headers["etag"], "one byte apart"


def test_a_matching_if_none_match_gives_a_304_keeping_the_cache_headers(client):
    tag = client.get("/doc").headers["etag"]
    response = client.get("/doc", headers={"if-none-match": tag})
    assert_not_modified(response)
    assert response.headers["etag"] == tag
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["vary"] == "Accept"
    assert response.headers["expires"] == "Tue, 01 Jul 2025 12:01:00 GMT"
    assert response.headers["content-location"] == "/doc"
    assert response.headers["set-cookie"] == "seen=1"
    assert "x-request-id" in response.headers, "layers outside still see the 304"
    # RFC 9110 §15.4.5: no metadata about a body that is not sent.
    for dropped in ("content-type", "content-language", "content-length"):
        assert dropped not in response.headers, dropped


@pytest.mark.parametrize(
    "value",
    ['"nope", {tag}', "W/{tag}", '"a",W/"b" , {tag}', "*", "{tag} ,,", "junk, {tag}"],
)
def test_if_none_match_lists_weak_tags_and_star_match(client, value):
    tag = client.get("/doc").headers["etag"]
    assert_not_modified(client.get("/doc", headers={"if-none-match": value.format(tag=tag)}))


@pytest.mark.parametrize(
    "value",
    [
        '"nope"',
        "{bare}",
        "{tag}junk",
        "w/{tag}",
        '"{bare}',
        "**",
        "*, {tag}x",
        ",,,",
        '"' + "a" * 4000 + '"',
        "W/",
    ],
)
def test_a_mismatched_or_malformed_if_none_match_gets_the_full_response(client, value):
    tag = client.get("/doc").headers["etag"]
    header = value.format(tag=tag, bare=tag.strip('"'))
    response = client.get("/doc", headers={"if-none-match": header})
    assert response.status_code == 200
    assert response.text == "hello etag"
    assert response.headers["etag"] == tag


def test_other_methods_and_statuses_are_never_304(client):
    star = {"if-none-match": "*"}
    response = client.post("/doc", headers=star)
    assert (response.status_code, response.text) == (200, "hello etag")
    assert "etag" not in response.headers
    for path, status in [("/created", 201), ("/bad", 400), ("/no/such/path", 404)]:
        response = client.get(path, headers=star)
        assert response.status_code == status, path
        assert "etag" not in response.headers, path
        assert response.content, path


def test_a_tag_the_handler_set_is_kept_and_compared(client):
    response = client.get("/tagged")
    assert response.headers["etag"] == '"v1"'
    assert_not_modified(client.get("/tagged", headers={"if-none-match": '"v1"'}))
    assert client.get("/tagged", headers={"if-none-match": '"v2"'}).text == "versioned"
    weak = client.get("/weak-tagged")
    assert weak.headers["etag"] == 'W/"w1"'
    assert_not_modified(client.get("/weak-tagged", headers={"if-none-match": '"w1"'}))


def test_a_stream_is_not_hashed_but_its_own_tag_is_compared(client):
    response = client.get("/stream")
    assert response.text == "ab"
    assert "etag" not in response.headers
    assert_not_modified(client.get("/stream", headers={"if-none-match": "*"}))
    response = client.get("/stream-tagged", headers={"if-none-match": '"s1"'})
    assert_not_modified(response)
    assert response.headers["etag"] == '"s1"'
    # The abandoned stream leaves the connection usable.
    assert client.get("/stream-tagged").text == "tagged stream"


@pytest.mark.parametrize(
    ("since", "status"),
    [
        (MODIFIED, 304),
        (LATER, 304),
        (EARLIER, 200),
        ("Tuesday, 01-Jul-25 12:00:00 GMT", 304),
        ("Tue Jul  1 12:00:00 2025", 304),
        ("not a date", 200),
        ("Tue, 01 Jul 2025 25:00:00 GMT", 200),
    ],
)
def test_if_modified_since_against_last_modified(client, since, status):
    response = client.get("/modified", headers={"if-modified-since": since})
    assert response.status_code == status
    if status == 304:
        assert response.content == b""
        assert response.headers["last-modified"] == MODIFIED, "kept: there is no ETag"
    else:
        assert response.text == "dated stream"


def test_if_none_match_takes_precedence_over_if_modified_since(client):
    tag = client.get("/doc").headers["etag"]
    headers = {"if-none-match": '"other"', "if-modified-since": LATER}
    assert client.get("/modified", headers=headers).status_code == 200
    headers = {"if-none-match": tag, "if-modified-since": EARLIER}
    assert_not_modified(client.get("/doc", headers=headers))
    # Without a Last-Modified, a date alone proves nothing.
    assert client.get("/doc", headers={"if-modified-since": LATER}).status_code == 200


def test_head_uses_a_tag_the_response_has_but_hashes_nothing(client):
    response = client.head("/doc")
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert_not_modified(client.head("/tagged", headers={"if-none-match": '"v1"'}))


def test_a_mounted_starlette_app_gets_tags_and_304s(client):
    plain = client.get("/starlette/plain")
    assert plain.text == "from starlette"
    assert TAG.match(plain.headers["etag"])
    assert_not_modified(
        client.get("/starlette/plain", headers={"if-none-match": plain.headers["etag"]})
    )
    # FileResponse streams and sets its own ETag and Last-Modified.
    file = client.get("/starlette/file")
    assert file.status_code == 200
    starlette_tag = file.headers["etag"]
    assert file.content == STATIC.read_bytes()
    assert_not_modified(client.get("/starlette/file", headers={"if-none-match": starlette_tag}))
    since = {"if-modified-since": file.headers["last-modified"]}
    assert_not_modified(client.get("/starlette/file", headers=since))
    mismatch = client.get("/starlette/file", headers={"if-none-match": '"x"'})
    assert mismatch.content == file.content


def test_weak_tags_when_configured():
    app = App()
    app.enable_etag(weak=True)

    @app.get("/")
    def index(request):
        return "hello"

    with TestClient(app) as client:
        tag = client.get("/").headers["etag"]
        assert tag.startswith('W/"') and TAG.match(tag[2:])
        assert_not_modified(client.get("/", headers={"if-none-match": tag[2:]}))


@pytest.mark.parametrize("weak", ["yes", 1, None])
def test_bad_configuration_names_the_option(weak):
    with pytest.raises(
        ValueError, match=re.escape(f"ETag weak must be True or False, not {weak!r}")
    ):
        ETag(weak=weak)
    with pytest.raises(ValueError, match="ETag weak"):
        App().enable_etag(weak=weak)
    assert ETagConfig is ETag


def test_the_native_builder_checks_the_option_type():
    with pytest.raises(ValueError, match="'weak' has the wrong type"):
        App()._core.add_layer("etag", "", {"weak": "no"})
    assert repr(ETag()) == "ETag(weak=False)"
