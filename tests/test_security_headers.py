"""Security headers through both doors (on handlers' answers, the
framework's refusals and a mounted Starlette app), the handler's own
headers winning, and the ``SecurityHeadersConfig``/``CSP`` builders."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import cello
import cello.middleware
from cello import CSP, App, SecurityHeadersConfig
from cello.testing import TestClient
from tests.live import door_client

DEFAULTS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "x-xss-protection": "1; mode=block",
    "referrer-policy": "strict-origin-when-cross-origin",
}
OPTIONAL = (
    "strict-transport-security",
    "content-security-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
)


def _client(door: str, name: str) -> Iterator[httpx.Client]:
    yield from door_client(door, f"tests.apps.cors:{name}", "--env", "production")


@pytest.fixture(scope="module", params=["native", "asgi"])
def public(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """``enable_security_headers()`` with the defaults."""
    yield from _client(request.param, "public")


@pytest.fixture(scope="module", params=["native", "asgi"])
def strict(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """``SecurityHeadersConfig.secure()`` with a CSP and a Permissions Policy."""
    yield from _client(request.param, "app")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/", 200), ("GET", "/nowhere", 404), ("POST", "/", 405), ("HEAD", "/", 200),
     ("GET", "/legacy/missing", 404)],
)  # fmt: skip
def test_the_defaults_are_on_every_response(public, method, path, status):
    response = public.request(method, path)
    assert response.status_code == status
    for name, value in DEFAULTS.items():
        assert response.headers.get_list(name) == [value], name
    for name in OPTIONAL:
        assert name not in response.headers, name


def test_a_header_the_response_sets_is_kept(public, strict):
    # The mounted Starlette app sets its own X-Frame-Options.
    for client in (public, strict):
        response = client.get("/legacy/hello")
        assert response.json() == {"starlette": "/legacy/hello"}
        assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
        assert response.headers["x-content-type-options"] == "nosniff"
    framed = strict.get("/framed")
    assert framed.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


@pytest.mark.parametrize("path", ["/items", "/nowhere", "/legacy/missing"])
def test_configured_headers_are_on_every_response(strict, path):
    response = strict.get(path)
    h = response.headers
    assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert h["content-security-policy"] == "default-src 'self'; img-src 'self' data:"
    assert h["permissions-policy"] == "camera=(), geolocation=(self)"
    assert h["x-frame-options"] == "DENY"


def test_a_refusal_before_routing_gets_them_too(strict):
    too_big = strict.post("/items", content=b"x" * 17)
    assert too_big.status_code == 413
    assert too_big.headers["x-frame-options"] == "DENY"


def test_names_are_exported():
    assert cello.SecurityHeadersConfig is cello.middleware.SecurityHeadersConfig
    assert cello.CSP is cello.middleware.CSP
    assert {"CSP", "SecurityHeadersConfig"} <= set(cello.__all__)
    assert {"CSP", "CorsConfig", "SecurityHeadersConfig"} <= set(cello.middleware.__all__)


# -- the configuration -----------------------------------------------------


def test_the_default_config_sends_the_four_classic_headers():
    assert dict(SecurityHeadersConfig().headers()) == {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "X-XSS-Protection": "1; mode=block",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"hsts": True}, "max-age=31536000"),
        ({"hsts_max_age": 600}, "max-age=600"),
        ({"hsts_max_age": 31536000, "hsts_include_subdomains": True},
         "max-age=31536000; includeSubDomains"),
        ({"hsts": True, "hsts_include_subdomains": True, "hsts_preload": True},
         "max-age=31536000; includeSubDomains; preload"),
        ({}, None),
        ({"hsts": False}, None),
        ({"hsts_include_subdomains": True}, None),
    ],
)  # fmt: skip
def test_hsts_is_sent_only_when_configured(options, expected):
    headers = dict(SecurityHeadersConfig(**options).headers())
    assert headers.get("Strict-Transport-Security") == expected


def test_secure_adds_a_year_of_hsts_with_subdomains():
    config = SecurityHeadersConfig.secure()
    assert dict(config.headers())["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )
    assert dict(SecurityHeadersConfig.secure(hsts_preload=True).headers())[
        "Strict-Transport-Security"
    ].endswith("; preload")


def test_options_set_to_false_or_none_omit_their_header_and_bools_are_accepted():
    headers = dict(
        SecurityHeadersConfig(
            x_frame_options=None, x_content_type_options=False, x_xss_protection=False,
            referrer_policy=None,
        ).headers()
    )  # fmt: skip
    assert headers == {}
    assert dict(SecurityHeadersConfig(x_xss_protection=True).headers())["X-XSS-Protection"] == (
        "1; mode=block"
    )
    assert dict(SecurityHeadersConfig(x_xss_protection="0").headers())["X-XSS-Protection"] == "0"
    assert (
        dict(SecurityHeadersConfig(x_frame_options="sameorigin").headers())["X-Frame-Options"]
        == "SAMEORIGIN"
    )


def test_the_other_policies_are_rendered():
    headers = dict(
        SecurityHeadersConfig(
            csp="default-src 'self'",
            permissions_policy={"camera": [], "geolocation": ["self", "https://maps.example"],
                                "fullscreen": "*", "interest_cohort": []},
            cross_origin_opener_policy="same-origin",
            cross_origin_embedder_policy="require-corp",
            cross_origin_resource_policy="same-site",
            referrer_policy="no-referrer, strict-origin",
        ).headers()
    )  # fmt: skip
    assert headers["Content-Security-Policy"] == "default-src 'self'"
    assert headers["Permissions-Policy"] == (
        'camera=(), geolocation=(self "https://maps.example"), fullscreen=*, interest-cohort=()'
    )
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["Cross-Origin-Resource-Policy"] == "same-site"
    assert headers["Referrer-Policy"] == "no-referrer, strict-origin"
    assert (
        dict(SecurityHeadersConfig(permissions_policy="camera=()").headers())["Permissions-Policy"]
        == "camera=()"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"x_frame_options": "ALLOW-FROM https://a.example"}, "x_frame_options must be"),
        ({"x_content_type_options": "sniff"}, "x_content_type_options must be"),
        ({"x_xss_protection": "1\r\nSet-Cookie: a=b"}, "'x_xss_protection' must be"),
        ({"referrer_policy": "everything"}, "referrer_policy: 'everything'"),
        ({"hsts_max_age": -5}, "hsts_max_age must be"),
        ({"hsts_max_age": "1y"}, "hsts_max_age must be"),
        ({"hsts": "yes"}, "hsts must be True or False"),
        ({"hsts": False, "hsts_max_age": 60}, "hsts=False contradicts hsts_max_age"),
        ({"hsts_preload": 1}, "hsts_preload must be True or False"),
        ({"csp": "default-src 'self'\nX-Evil: 1"}, "'csp' must be"),
        ({"csp": CSP()}, "csp has no directives"),
        ({"csp": "a", "content_security_policy": "b"}, "not both"),
        ({"permissions_policy": {"camera": ["self;"]}}, "'camera': 'self;' is not an origin"),
        ({"permissions_policy": {"Camera!": []}}, "'Camera!' is not a feature name"),
        ({"permissions_policy": {}}, "at least one feature"),
        ({"permissions_policy": 3}, "permissions_policy must be a str or a dict"),
        ({"cross_origin_opener_policy": "open"}, "cross_origin_opener_policy must be one of"),
    ],
)
def test_bad_options_are_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SecurityHeadersConfig(**options)


def test_enable_security_headers_takes_a_config_or_options():
    app = App()
    app.enable_security_headers(hsts=True)
    with TestClient(app) as client:
        assert client.get("/x").headers["strict-transport-security"] == "max-age=31536000"
    with pytest.raises(ValueError, match="a config or options, not both"):
        App().enable_security_headers(SecurityHeadersConfig(), hsts=True)
    with pytest.raises(ValueError, match="takes a SecurityHeadersConfig"):
        App().enable_security_headers({"hsts": True})  # type: ignore[arg-type]


# -- CSP -------------------------------------------------------------------


def test_csp_takes_varargs_lists_and_keywords_alike():
    chained = CSP().default_src("'self'", "https:").script_src(["'self'", "cdn.example.com"])
    keywords = CSP(default_src=["'self'", "https:"], script_src=["'self'", "cdn.example.com"])
    assert chained == keywords
    assert chained.build() == "default-src 'self' https:; script-src 'self' cdn.example.com"
    assert str(chained) == chained.build()
    assert CSP(default_src="'self' https:") == CSP().default_src("'self'", "https:")


def test_every_directive_method_returns_the_policy_and_replaces_its_value():
    csp = CSP()
    for method in ("default_src", "script_src", "style_src", "img_src", "connect_src",
                   "font_src", "media_src", "object_src", "frame_src", "frame_ancestors",
                   "form_action", "base_uri"):  # fmt: skip
        assert getattr(csp, method)("'none'") is csp
    csp.object_src("'self'")
    assert csp.build().split("; ")[7] == "object-src 'self'"
    assert csp.upgrade_insecure_requests() is csp
    assert csp.build().endswith("; upgrade-insecure-requests")
    assert CSP().directive("worker_src", "'self'").build() == "worker-src 'self'"


@pytest.mark.parametrize(
    "sources",
    [("'self'; script-src *",), ("'self'\nX-Evil: 1",), ("a,b",), ("\x00",), (3,), ([None],)],
)
def test_csp_refuses_sources_that_could_inject(sources):
    with pytest.raises(ValueError, match="CSP default-src"):
        CSP().default_src(*sources)


def test_csp_refuses_an_empty_directive_and_a_bad_name():
    with pytest.raises(ValueError, match="at least one source"):
        CSP().script_src()
    with pytest.raises(ValueError, match="at least one source"):
        CSP(img_src=[])
    with pytest.raises(ValueError, match="directive name"):
        CSP().directive("script src", "'self'")
