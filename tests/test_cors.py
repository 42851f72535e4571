"""CORS through both doors (the native server and the app called as ASGI):
preflights before routing, the headers every response gets, exact origin
matching, refusals, mounted Starlette apps, blueprint scope, and the
configuration errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cello import App
from cello.middleware import CorsConfig
from cello.testing import TestClient
from tests.live import LiveServer

ORIGIN = "https://example.com"


def _client(request: pytest.FixtureRequest, door: str, name: str) -> Iterator[httpx.Client]:
    if door == "native":
        with LiveServer(f"tests.apps.cors:{name}", "--env", "production") as live:
            with httpx.Client(base_url=live.url, timeout=10) as c:
                yield c
    else:
        import tests.apps.cors as apps

        with TestClient(getattr(apps, name)) as c:
            yield c


@pytest.fixture(scope="module", params=["native", "asgi"])
def listed(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """The app with a listed-origins, credentialed policy."""
    yield from _client(request, request.param, "app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def public(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """The app with ``enable_cors()``'s defaults."""
    yield from _client(request, request.param, "public")


def preflight(client: httpx.Client, path: str, origin: str = ORIGIN, method: str = "POST",
              headers: str | None = None) -> httpx.Response:  # fmt: skip
    sent = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        sent["access-control-request-headers"] = headers
    return client.options(path, headers=sent)


# -- preflights ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/items", "/nowhere", "/legacy/hello"])
def test_a_preflight_is_answered_before_routing(listed, path):
    # /items has no OPTIONS route, /nowhere no route at all, and the mounted
    # Starlette app never sees the request.
    response = preflight(listed, path, headers="X-Token, Content-Type")
    assert response.status_code == 204
    assert response.content == b""
    h = response.headers
    assert h["access-control-allow-origin"] == ORIGIN
    assert h["access-control-allow-methods"] == "GET, POST, DELETE"
    assert h["access-control-allow-headers"] == "X-Token, Content-Type"
    assert h["access-control-max-age"] == "600"
    assert h["access-control-allow-credentials"] == "true"
    assert h["vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    assert "content-length" not in h or h["content-length"] == "0"


def test_a_preflight_naming_no_headers_is_told_the_configured_ones(listed):
    response = preflight(listed, "/items", method="DELETE")
    assert response.status_code == 204
    assert response.headers["access-control-allow-headers"] == "x-token"


@pytest.mark.parametrize(
    ("origin", "method", "headers", "detail"),
    [
        ("https://evil.example", "POST", None, "CORS origin not allowed"),
        ("https://example.com.evil", "POST", None, "CORS origin not allowed"),
        ("https://evil.example.com.attacker.net", "POST", None, "CORS origin not allowed"),
        ("null", "POST", None, "CORS origin not allowed"),
        (ORIGIN, "PUT", None, "CORS method not allowed: PUT"),
        (ORIGIN, "POST", "x-token, x-secret", "CORS header not allowed: x-secret"),
    ],
)
def test_a_refused_preflight_is_a_403_problem_without_allow_origin(
    listed, origin, method, headers, detail
):
    response = preflight(listed, "/items", origin=origin, method=method, headers=headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": detail,
        "instance": "/items",
    }
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_options_without_a_requested_method_goes_to_routing(listed):
    # An explicit OPTIONS route answers, and gets the simple-request headers.
    routed = listed.options("/ping", headers={"origin": ORIGIN})
    assert routed.status_code == 200
    assert routed.json() == {"options": True}
    assert routed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-methods" not in routed.headers
    # Without one, routing refuses it as it would any other method.
    refused = listed.options("/items", headers={"origin": ORIGIN})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, POST"
    assert refused.headers["access-control-allow-origin"] == ORIGIN


def test_a_preflight_without_an_origin_is_not_one(listed):
    response = listed.options("/items", headers={"access-control-request-method": "POST"})
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


# -- actual requests -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/items", None, 200),
        ("POST", "/items", b"abc", 201),
        ("GET", "/nowhere", None, 404),
        ("PUT", "/items", None, 405),
        ("POST", "/items", b"x" * 17, 413),
        ("GET", "/legacy/hello", None, 200),
        ("GET", "/legacy/missing", None, 404),
        ("HEAD", "/items", None, 200),
    ],
)
def test_every_response_to_an_allowed_origin_carries_the_policy(listed, method, path, body, status):
    response = listed.request(method, path, headers={"origin": ORIGIN}, content=body)
    assert response.status_code == status
    h = response.headers
    assert h["access-control-allow-origin"] == ORIGIN
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-expose-headers"] == "x-total"
    assert h.get_list("vary") == ["Origin"]
    assert "access-control-allow-methods" not in h  # preflight answers only


def test_a_second_listed_origin_is_echoed_too(listed):
    response = listed.get("/items", headers={"origin": "http://localhost:3000"})
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://evil.example.com.attacker.net",
        "https://example.com.evil",
        "http://example.com",
        "https://example.com:8443",
        "null",
    ],
)
def test_another_origin_gets_no_allow_origin(listed, origin):
    response = listed.get("/items", headers={"origin": origin})
    assert response.status_code == 200
    assert response.json() == {"items": [1, 2]}
    assert not any(name.startswith("access-control-") for name in response.headers)
    assert response.headers["vary"] == "Origin"


def test_without_an_origin_only_vary_is_added(listed):
    response = listed.get("/items")
    assert not any(name.startswith("access-control-") for name in response.headers)
    # The answer depends on the origin, so a cache must not reuse it for one.
    assert response.headers["vary"] == "Origin"


def test_an_existing_vary_is_extended(listed):
    response = listed.get("/framed", headers={"origin": ORIGIN})
    assert response.headers.get_list("vary") == ["Accept-Language, Origin"]


def test_any_origin_gets_a_star_and_no_origin_is_left_untouched(public):
    allowed = public.get("/", headers={"origin": "https://anywhere.example"})
    assert allowed.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed.headers["vary"] == "Origin"
    plain = public.get("/")
    assert plain.json() == {"hello": "world"}
    assert "access-control-allow-origin" not in plain.headers
    assert "vary" not in plain.headers


def test_any_origin_still_refuses_the_null_origin(public):
    assert "access-control-allow-origin" not in public.get("/", headers={"origin": "null"}).headers
    assert preflight(public, "/", origin="null").status_code == 403


def test_default_policy_preflight(public):
    response = preflight(public, "/legacy/hello", method="PATCH", headers="x-anything")
    assert response.status_code == 204
    h = response.headers
    assert h["access-control-allow-origin"] == "*"
    assert h["access-control-allow-methods"] == "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
    assert h["access-control-allow-headers"] == "x-anything"
    assert h["access-control-max-age"] == "86400"
    assert "access-control-allow-credentials" not in h
    assert preflight(public, "/", method="PROPFIND").status_code == 403


def test_the_mounted_starlette_app_gets_the_headers(public):
    response = public.get("/legacy/hello", headers={"origin": "https://a.example"})
    assert response.json() == {"starlette": "/legacy/hello"}
    assert response.headers["access-control-allow-origin"] == "*"


# -- scope, configuration --------------------------------------------------


@pytest.mark.parametrize("door", ["native", "asgi"])
def test_a_blueprint_policy_covers_its_prefix_only(request, door):
    for client in _client(request, door, "scoped"):
        inside = client.get("/api/data", headers={"origin": ORIGIN})
        assert inside.headers["access-control-allow-origin"] == ORIGIN
        assert preflight(client, "/api/nowhere").status_code == 204
        outside = client.get("/other", headers={"origin": ORIGIN})
        assert outside.json() == {"other": True}
        assert "access-control-allow-origin" not in outside.headers
        assert "vary" not in outside.headers
        # Outside it a preflight is an OPTIONS request like any other.
        assert preflight(client, "/other").status_code == 405


def test_origin_regex_allows_whole_matches_only():
    app = App()
    app.enable_cors(allow_origin_regex=r"https://[a-z]+\.example\.com")

    @app.get("/")
    def index(request):
        return {}

    with TestClient(app) as client:
        ok = client.get("/", headers={"origin": "https://app.example.com"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        for origin in ["https://app.example.com.evil.net", "https://example.com", "null"]:
            refused = client.get("/", headers={"origin": origin})
            assert "access-control-allow-origin" not in refused.headers, origin


def test_credentials_with_any_origin_echo_the_origin():
    app = App()
    app.enable_cors(allow_origins=["*"], allow_credentials=True, allow_methods=["*"])
    with TestClient(app) as client:
        response = preflight(client, "/x", origin="https://a.example", method="PROPFIND")
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "https://a.example"
        assert response.headers["access-control-allow-methods"] == "PROPFIND"
        actual = client.get("/x", headers={"origin": "https://b.example"})
        assert actual.status_code == 404
        assert actual.headers["access-control-allow-origin"] == "https://b.example"
        assert actual.headers["access-control-allow-credentials"] == "true"


def test_the_config_keeps_the_starlette_spellings():
    config = CorsConfig(
        allow_origins=["https://a.example"], allow_methods=["get"], headers=["X-A"],
        allow_credentials=True, allow_origin_regex="https://.*", expose_headers=["X-B"],
    )  # fmt: skip
    assert config._layer() == (
        "cors",
        {
            "origins": ["https://a.example"],
            "origin_regex": "https://.*",
            "methods": ["GET"],
            "allow_headers": ["X-A"],
            "expose_headers": ["X-B"],
            "credentials": True,
            "max_age": 86400,
        },
    )
    assert CorsConfig("*").origins == ["*"]
    assert CorsConfig().origins is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"origins": ["https://example.com/"]},
            "'origins': 'https://example.com/' is not an origin",
        ),
        ({"origins": ["example.com"]}, "'origins': 'example.com' is not an origin"),
        ({"origins": [1]}, "'origins' must hold strings"),
        ({"origins": 5}, "'origins' must be a list of strings"),
        ({"methods": ["GET POST"]}, "'methods': 'GET POST' is not a method"),
        ({"allow_headers": ["x token"]}, "'allow_headers': 'x token' is not a header name"),
        ({"expose_headers": ["a:b"]}, "'expose_headers': 'a:b' is not a header name"),
        ({"credentials": "yes"}, "'credentials' must be True or False"),
        ({"max_age": -1}, "'max_age' must be a number of seconds"),
        ({"max_age": True}, "'max_age' must be a number of seconds"),
        ({"origin_regex": 3}, "'origin_regex' must be a str"),
        ({"origins": ["*"], "allow_origins": ["*"]}, "'origins' or 'allow_origins', not both"),
        ({"allow_everything": True}, "unknown CORS option 'allow_everything'"),
    ],
)
def test_bad_options_are_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        CorsConfig(**options)


def test_a_pattern_rust_cannot_compile_is_refused_when_added():
    config = CorsConfig(origin_regex=r"https://(?=lookahead)")
    with pytest.raises(ValueError, match="invalid CORS option 'origin_regex'"):
        App().use(config)
