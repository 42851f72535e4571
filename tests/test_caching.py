"""The response cache through door 1 (the native server) and door 2 (the
ASGI transport): hits that skip the handler, expiry, what is never stored,
Vary, 304s with and without the ETag layer, ``@cache`` on its own, and an
invalidation that reaches both workers of a two-worker server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

import cello
import cello.middleware
from cello import App, cache
from cello.middleware import CacheConfig
from tests.live import LiveServer, door_client

APPS = "tests.apps.caching"


def _client(door: str, name: str) -> Iterator[httpx.Client]:
    yield from door_client(door, f"{APPS}:{name}")


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def etag_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "with_etag")


@pytest.fixture(scope="module", params=["native", "asgi"])
def implicit_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "implicit")


@pytest.fixture(scope="module", params=["native", "asgi"])
def compressed_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "compressed")


def calls(client: httpx.Client, key: str) -> int:
    return int(client.get("/calls").json().get(key, 0))


# -- hits and misses ---------------------------------------------------------


def test_a_miss_is_stored_and_the_next_request_is_a_hit_without_the_handler(client):
    first = client.get("/page?hit")
    assert first.status_code == 200
    assert first.headers["x-cache"] == "MISS"
    assert first.headers["cache-control"] == "max-age=300"
    second = client.get("/page?hit")
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert second.headers["etag"] == first.headers["etag"]
    age = int(second.headers["age"])
    assert second.headers["cache-control"] == f"max-age={300 - age}"
    assert calls(client, "/page?hit") == 1


def test_the_query_is_part_of_the_key(client):
    assert client.get("/page?q=1").headers["x-cache"] == "MISS"
    assert client.get("/page?q=2").headers["x-cache"] == "MISS"
    assert client.get("/page?q=1").json() == {"page": "q=1", "call": 1}
    assert client.get("/page?q=2").json() == {"page": "q=2", "call": 1}


def test_the_host_is_part_of_the_key(client):
    assert client.get("/page?host").headers["x-cache"] == "MISS"
    other = client.get("/page?host", headers={"Host": "other.example"})
    assert other.headers["x-cache"] == "MISS"
    assert other.json()["call"] == 2
    assert client.get("/page?host").json()["call"] == 1


def test_head_is_answered_from_the_get_entry(client):
    assert client.head("/page?head").headers["x-cache"] == "BYPASS"
    body = client.get("/page?head").content
    head = client.head("/page?head")
    assert head.headers["x-cache"] == "HIT"
    assert head.content == b""
    assert head.headers["content-length"] == str(len(body))
    assert calls(client, "/page?head") == 2


def test_an_entry_expires_after_its_ttl(client):
    assert client.get("/short").headers["x-cache"] == "MISS"
    # A bounded wait: the route's TTL is one second.
    deadline = time.monotonic() + 15
    while client.get("/short").headers["x-cache"] == "HIT":
        assert time.monotonic() < deadline, "the entry never expired"
        time.sleep(0.2)
    assert calls(client, "/short") == 2


def test_request_no_cache_fetches_a_fresh_copy(client):
    client.get("/page?fresh")
    again = client.get("/page?fresh", headers={"Cache-Control": "no-cache"})
    assert again.headers["x-cache"] == "MISS"
    assert again.json()["call"] == 2
    assert client.get("/page?fresh").json()["call"] == 2


# -- what is never stored ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [("/missing", 404), ("/created", 201), ("/no-store", 200), ("/private", 200),
     ("/cookie", 200), ("/stream", 200)],
)  # fmt: skip
def test_uncacheable_responses_bypass(client, path, status):
    for _ in range(2):
        response = client.get(path)
        assert response.status_code == status
        assert response.headers["x-cache"] == "BYPASS"
        # The client would send /cookie's cookie back: a request with a
        # cookie bypasses the cache too, for a reason of its own.
        client.cookies.clear()
    assert calls(client, path) == 2


@pytest.mark.parametrize(
    "credentials", [{"Authorization": "Bearer token"}, {"Cookie": "session=abc"}]
)
def test_requests_with_credentials_bypass(client, credentials):
    client.get("/page?shared")
    private = client.get("/page?shared", headers=credentials)
    assert private.headers["x-cache"] == "BYPASS"
    assert private.json()["call"] > 1


def test_excluded_paths_and_other_methods_are_left_alone(client):
    for _ in range(2):
        health = client.get("/health")
        assert "x-cache" not in health.headers
    assert calls(client, "/health") == 2
    posted = client.post("/invalidate")
    assert "x-cache" not in posted.headers


def test_the_handler_s_cache_control_wins_and_bounds_the_ttl(client):
    first = client.get("/own-cache-control")
    assert first.headers["x-cache"] == "MISS"
    assert first.headers["cache-control"] == "public, max-age=120"
    second = client.get("/own-cache-control")
    assert second.headers["x-cache"] == "HIT"
    assert second.headers["cache-control"] == "public, max-age=120"
    assert "age" in second.headers


def test_vary_keeps_one_entry_per_header_value(client):
    en = {"Accept-Language": "en"}
    fr = {"Accept-Language": "fr"}
    assert client.get("/lang", headers=en).text == "en 1"
    assert client.get("/lang", headers=fr).text == "fr 2"
    hit = client.get("/lang", headers=en)
    assert (hit.headers["x-cache"], hit.text) == ("HIT", "en 1")
    assert client.get("/lang", headers=fr).text == "fr 2"
    assert calls(client, "/lang") == 2


# -- conditional requests ----------------------------------------------------


def test_if_none_match_gets_a_304_from_the_cache(client):
    first = client.get("/page?cond")
    tag = first.headers["etag"]
    hit = client.get("/page?cond", headers={"If-None-Match": tag})
    assert hit.status_code == 304
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["etag"] == tag
    assert hit.content == b""
    assert "content-type" not in hit.headers
    other = client.get("/page?cond", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200
    assert other.content == first.content
    missed = client.get("/page?cond-miss", headers={"If-None-Match": "*"})
    assert (missed.status_code, missed.headers["x-cache"]) == (304, "MISS")


def test_with_the_etag_layer_a_hit_gets_one_tag_and_the_same_304(etag_client):
    first = etag_client.get("/page?e")
    tag = first.headers["etag"]
    assert len(first.headers.get_list("etag")) == 1
    hit = etag_client.get("/page?e")
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers.get_list("etag") == [tag]
    not_modified = etag_client.get("/page?e", headers={"If-None-Match": f'"x", W/{tag}'})
    assert (not_modified.status_code, not_modified.headers["x-cache"]) == (304, "HIT")
    assert not_modified.headers.get_list("etag") == [tag]
    assert "content-length" not in not_modified.headers
    mismatch = etag_client.get("/page?e", headers={"If-None-Match": '"x"'})
    assert mismatch.status_code == 200
    assert mismatch.content == first.content
    assert calls(etag_client, "/page?e") == 1


def test_each_client_gets_a_hit_encoded_as_it_asks(compressed_client):
    text = "cached and compressed " * 200
    first = compressed_client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert (first.headers["x-cache"], first.headers["content-encoding"]) == ("MISS", "gzip")
    assert first.text == text
    plain = compressed_client.get("/big", headers={"Accept-Encoding": "identity"})
    assert plain.headers["x-cache"] == "HIT"
    assert "content-encoding" not in plain.headers
    assert plain.text == text
    again = compressed_client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert (again.headers["x-cache"], again.headers["content-encoding"]) == ("HIT", "gzip")
    assert again.text == text


def test_a_hit_skips_python_middleware_and_replays_what_it_added(compressed_client):
    first = compressed_client.get("/big?after")
    hit = compressed_client.get("/big?after")
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-after"] == first.headers["x-after"]


# -- @cache ------------------------------------------------------------------


def test_cache_decorator_headers_and_conversions(client):
    users = client.get("/users")
    assert users.headers["x-cache-ttl"] == "60"
    assert users.headers["x-cache-tags"] == "users,lists"
    assert users.headers["cache-control"] == "max-age=60"
    assert users.json()["users"] == ["ada"]
    text = client.get("/text")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["x-cache-ttl"] == "300", "the app's ttl"
    assert text.headers["x-cache-tags"] == "text"
    raw = client.get("/bytes")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.content == b"bytes 1"
    assert "x-cache-tags" not in raw.headers
    assert client.get("/bytes").headers["x-cache"] == "HIT"


def test_invalidating_a_tag_drops_its_entries_only(client):
    client.get("/users")
    client.get("/text")
    assert client.get("/users").headers["x-cache"] == "HIT"
    before = calls(client, "/users")
    assert client.post("/invalidate?tag=lists").json() == {"invalidated": ["lists"]}
    fresh = client.get("/users")
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.json()["call"] == before + 1
    assert client.get("/users").headers["x-cache"] == "HIT"
    assert client.get("/text").headers["x-cache"] == "HIT"


def test_cache_without_enable_caching_caches_the_decorated_routes_only(implicit_client):
    plain = implicit_client.get("/plain")
    assert "x-cache" not in plain.headers
    assert "cache-control" not in plain.headers
    first = implicit_client.get("/decorated")
    assert first.headers["x-cache"] == "MISS"
    second = implicit_client.get("/decorated")
    assert second.headers["x-cache"] == "HIT"
    assert second.json() == first.json()


# -- workers -----------------------------------------------------------------


def _pids_and_states(live: LiveServer, rounds: int) -> dict[int, set[str]]:
    """What each worker answered, over fresh connections."""
    seen: dict[int, set[str]] = {}
    for _ in range(rounds):
        with httpx.Client(base_url=live.url, timeout=10) as fresh:
            response = fresh.get("/pid")
            seen.setdefault(response.json()["pid"], set()).add(response.headers["x-cache"])
    return seen


def test_an_invalidation_reaches_every_worker():
    with LiveServer(f"{APPS}_workers:app") as live:
        # Fill both workers' caches: fresh connections land on either.
        deadline = time.monotonic() + 60
        seen: dict[int, set[str]] = {}
        while not (len(seen) == 2 and all("HIT" in s for s in seen.values())):
            assert time.monotonic() < deadline, f"never saw two warm workers: {seen}"
            for pid, states in _pids_and_states(live, 8).items():
                seen.setdefault(pid, set()).update(states)
        with httpx.Client(base_url=live.url, timeout=10) as fresh:
            assert fresh.post("/invalidate").status_code == 200
        # Every worker's first answer after the invalidation is a miss.
        first: dict[int, str] = {}
        deadline = time.monotonic() + 60
        while len(first) < 2:
            assert time.monotonic() < deadline, f"a worker never answered: {first}"
            with httpx.Client(base_url=live.url, timeout=10) as fresh:
                response = fresh.get("/pid")
                first.setdefault(response.json()["pid"], response.headers["x-cache"])
        assert set(first) == set(seen)
        assert first == dict.fromkeys(seen, "MISS")


# -- configuration -----------------------------------------------------------


def test_exports():
    assert cello.cache is cache
    assert "cache" in cello.__all__
    assert cello.middleware.CacheConfig is CacheConfig
    assert "CacheConfig" in cello.middleware.__all__


def test_config_defaults_and_repr():
    config = CacheConfig()
    assert config.ttl == 300
    assert config.methods == ["GET", "HEAD"]
    assert config.exclude_paths == ["/health", "/metrics"]
    assert config.max_bytes == 64 * 1024 * 1024
    assert config.max_entries == 10_000
    assert config.max_entry_bytes == 1024 * 1024
    assert config.key_by_user is False
    assert repr(config).startswith("CacheConfig(ttl=300, methods=['GET', 'HEAD']")
    assert CacheConfig(methods=["get"]).methods == ["GET"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0}, "'ttl' must be a whole number > 0"),
        ({"ttl": -5}, "'ttl' must be a whole number > 0"),
        ({"ttl": 1.5}, "'ttl' must be a whole number > 0"),
        ({"ttl": True}, "'ttl' must be a whole number > 0"),
        ({"methods": ["POST"]}, "'methods' takes GET and HEAD only, not 'POST'"),
        ({"methods": ["FETCH"]}, "'methods' takes GET and HEAD only"),
        ({"methods": []}, "'methods' must include GET"),
        ({"methods": ["HEAD"]}, "'methods' must include GET"),
        ({"methods": "GET"}, "'methods' must be a list of strings"),
        ({"exclude_paths": ["health"]}, "paths starting with '/'"),
        ({"exclude_paths": [1]}, "must hold strings"),
        ({"max_bytes": 0}, "'max_bytes' must be a whole number > 0"),
        ({"max_entries": -1}, "'max_entries' must be a whole number > 0"),
        ({"max_entry_bytes": 0}, "'max_entry_bytes' must be a whole number > 0"),
        ({"key_by_user": "yes"}, "'key_by_user' must be True or False"),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        CacheConfig(**options)
    if set(options) <= {"ttl", "methods", "exclude_paths"}:
        with pytest.raises(ValueError, match=message):
            App().enable_caching(**options)


def test_enable_caching_takes_a_config_or_options_once():
    app = App()
    with pytest.raises(ValueError, match="a config or options, not both"):
        app.enable_caching(ttl=5, config=CacheConfig())
    with pytest.raises(ValueError, match="takes a CacheConfig"):
        app.enable_caching(config={"ttl": 5})  # type: ignore[arg-type]
    app.enable_caching(config=CacheConfig(ttl=5))
    assert ("Cache", "") in app._core.layers()
    with pytest.raises(RuntimeError, match="already enabled"):
        app.enable_caching()


def test_enable_caching_after_a_cache_route_says_how_to_fix_it():
    app = App()

    @app.get("/x")
    @cache()
    def x():
        return "x"

    with pytest.raises(RuntimeError, match="must come before the first @cache route"):
        app.enable_caching()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"ttl": 0}, "ttl must be a whole number of seconds > 0"),
        ({"ttl": "60"}, "ttl must be a whole number of seconds > 0"),
        ({"tags": ["a,b"]}, "is not a tag"),
        ({"tags": ["a b"]}, "is not a tag"),
        ({"tags": [""]}, "is not a tag"),
        ({"tags": [3]}, "is not a tag"),
        ({"tags": 3}, "takes a list of tag strings"),
    ],
)
def test_bad_cache_arguments_are_value_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        cache(**arguments)


def test_invalidate_cache_takes_a_list_a_keyword_or_one_tag():
    app = App()
    app.invalidate_cache(["a", "b"])
    app.invalidate_cache(tags=["a"])
    app.invalidate_cache("a")
    app.invalidate_cache([])
    with pytest.raises(ValueError, match="is not a tag"):
        app.invalidate_cache(["ok", None])  # type: ignore[list-item]


def test_cache_keeps_the_handler_s_name_and_works_outside_an_app():
    @cache(ttl=5, tags=["t"])
    def handler(request):
        """Doc."""
        return {"a": 1}

    assert handler.__name__ == "handler"
    assert handler.__doc__ == "Doc."
    response = handler(None)
    assert response.headers["x-cache-ttl"] == "5"
    assert response.headers["x-cache-tags"] == "t"
    assert response.headers["content-type"] == "application/json"
