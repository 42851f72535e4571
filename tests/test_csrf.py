"""CSRF protection through both doors: the cookie and its token, safe
methods, the header and the form fields (URL-encoded and multipart) that
echo it, missing, wrong, malformed and foreign tokens, exempt paths, the
template helpers and ``CsrfConfig``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cello import App, Request
from cello.middleware import CsrfConfig, csrf_input, csrf_meta
from cello.middleware.csrf import CsrfMiddleware, multipart_field
from cello.testing import TestClient
from tests.live import LiveServer

TOKEN = re.compile(r"[0-9]+\.[0-9a-f]{32}\.[0-9a-f]{64}")
FAILED = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "CSRF token validation failed",
}

Factory = Callable[[], httpx.Client]


def _factory(door: str, name: str) -> Iterator[Factory]:
    opened: list[httpx.Client] = []
    if door == "native":
        with LiveServer(f"tests.apps.csrf:{name}", "--env", "production") as live:

            def native() -> httpx.Client:
                opened.append(httpx.Client(base_url=live.url, timeout=10))
                return opened[-1]

            yield native
    else:
        import tests.apps.csrf as apps

        def asgi() -> httpx.Client:
            opened.append(TestClient(getattr(apps, name)))
            return opened[-1]

        yield asgi
    for client in opened:
        client.close()


@pytest.fixture(scope="module", params=["native", "asgi"])
def new_client(request: pytest.FixtureRequest) -> Iterator[Factory]:
    yield from _factory(request.param, "app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def new_defaults_client(request: pytest.FixtureRequest) -> Iterator[Factory]:
    yield from _factory(request.param, "defaults")


def _with_token(new_client: Factory) -> tuple[httpx.Client, str]:
    client = new_client()
    client.get("/token")
    return client, client.cookies["_csrf"]


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {k: body[k] for k in FAILED} == FAILED


# -- the cookie and the token ------------------------------------------------


def test_a_safe_request_gets_a_token_cookie(new_client):
    client = new_client()
    response = client.get("/token")
    (cookie,) = response.headers.get_list("set-cookie")
    value, *attributes = cookie.split("; ")
    name, _, token = value.partition("=")
    assert name == "_csrf" and TOKEN.fullmatch(token)
    assert attributes == ["Path=/", "SameSite=Lax"]  # readable by scripts: not HttpOnly
    assert response.json() == {"token": token, "context": token}
    # The same token while the cookie lasts, and no new cookie.
    again = client.get("/token")
    assert again.json()["token"] == token
    assert "set-cookie" not in again.headers
    # Another client, another token.
    assert new_client().get("/token").json()["token"] != token


def test_the_default_cookie_is_secure_and_not_httponly(new_defaults_client):
    response = new_defaults_client().get("/")
    csrf = [c for c in response.headers.get_list("set-cookie") if c.startswith("_csrf=")]
    (cookie,) = csrf
    assert cookie.split("; ")[1:] == ["Path=/", "Secure", "SameSite=Lax"]
    assert cookie.split("; ")[0] == "_csrf=" + response.json()["token"]


def test_a_cookie_from_another_secret_is_replaced(new_client):
    foreign = CsrfMiddleware(CsrfConfig(secret="another-secret")).new_token()
    client = new_client()
    client.cookies.set("_csrf", foreign)
    response = client.get("/token")
    assert response.json()["token"] != foreign
    assert response.headers["set-cookie"].startswith("_csrf=" + response.json()["token"])


def test_the_template_helpers(new_client):
    client = new_client()
    page = client.get("/form").text
    token = client.cookies["_csrf"]
    assert f'<input type="hidden" name="_csrf" value="{token}">' in page
    assert f'<meta name="csrf-token" content="{token}">' in page


def test_the_template_helpers_escape_html():
    request = Request("GET", "/")
    request.context["csrf_token"] = '"><script>x</script>'
    assert csrf_input(request) == (
        '<input type="hidden" name="_csrf" value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">'
    )
    assert csrf_meta(request) == (
        '<meta name="csrf-token" content="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">'
    )


def test_request_csrf_token_without_csrf_says_how_to_enable_it():
    with pytest.raises(RuntimeError, match=r"app\.enable_csrf\("):
        _ = Request("GET", "/").csrf_token
    with pytest.raises(RuntimeError, match=r"enable_csrf"):
        csrf_input(Request("GET", "/"))


# -- which requests are checked ----------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_pass_without_a_token(new_client, method):
    response = new_client().request(method, "/token")
    assert response.status_code != 403


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_unsafe_methods_without_a_token_are_refused(new_client, method):
    _refused(new_client().request(method, "/submit"))
    client, _ = _with_token(new_client)
    _refused(client.request(method, "/submit"))  # the cookie alone is not enough


def test_exempt_paths_are_not_checked(new_client):
    client = new_client()
    assert client.post("/webhooks/github").json() == {"ok": True}
    _refused(client.post("/webhooksfoo"))


# -- how the token comes back --------------------------------------------------


def test_the_header_passes(new_client):
    client, token = _with_token(new_client)
    response = client.post("/submit", content="hello", headers={"X-CSRF-Token": token})
    assert response.json() == {"ok": True, "body": "hello"}
    assert client.put("/submit", headers={"x-csrf-token": token}).json() == {"ok": True}


def test_the_form_field_passes_and_the_handler_still_reads_the_form(new_client):
    client, token = _with_token(new_client)
    response = client.post("/submit", data={"name": "Ada", "_csrf": token})
    assert response.json() == {"ok": True, "form": {"name": "Ada", "_csrf": token}}


def test_a_multipart_form_field_passes_and_the_handler_still_reads_the_body(new_client):
    client, token = _with_token(new_client)
    response = client.post("/upload", data={"_csrf": token}, files={"f": ("a.txt", b"x" * 1000)})
    assert response.json()["ok"] is True
    assert response.json()["size"] > 1000


def test_a_multipart_file_named_like_the_field_does_not_count(new_client):
    client, token = _with_token(new_client)
    files = {"_csrf": ("token.txt", token.encode())}
    _refused(client.post("/upload", files=files))


def test_a_wrong_token_is_refused(new_client):
    client, token = _with_token(new_client)
    _, other = _with_token(new_client)  # valid, but another client's
    _refused(client.post("/submit", headers={"X-CSRF-Token": other}))
    _refused(client.post("/submit", data={"_csrf": other}))
    _refused(client.post("/submit", headers={"X-CSRF-Token": token[:-1]}))
    _refused(client.post("/submit", headers={"X-CSRF-Token": ""}))


def test_a_token_from_another_secret_is_refused(new_client):
    # An attacker who can plant a cookie (a sibling subdomain) and echo it
    # still needs the app's secret to sign it.
    foreign = CsrfMiddleware(CsrfConfig(secret="another-secret")).new_token()
    client = new_client()
    client.cookies.set("_csrf", foreign)
    _refused(client.post("/submit", headers={"X-CSRF-Token": foreign}))


@pytest.mark.parametrize(
    "token", [b"x", b"1.2.3", b"1." + b"a" * 32 + b"." + b"G" * 64, b"\xc3\xa9", b"\xff"]
)
def test_a_malformed_token_is_refused(new_client, token):
    # The same malformed value in the cookie and the header: they match,
    # but no valid signature is there.
    headers = {"Cookie": b"_csrf=" + token, "X-CSRF-Token": token}
    _refused(new_client().post("/submit", headers=headers))


def test_a_header_without_a_cookie_is_refused(new_client):
    _, token = _with_token(new_client)
    _refused(new_client().post("/submit", headers={"X-CSRF-Token": token}))


@pytest.fixture(scope="module", params=["native", "asgi"])
def new_custom_client(request: pytest.FixtureRequest) -> Iterator[Factory]:
    yield from _factory(request.param, "custom")


def test_custom_names_safe_methods_and_a_reshaped_refusal(new_custom_client):
    client = new_custom_client()
    index = client.get("/")
    (cookie,) = index.headers.get_list("set-cookie")
    token = index.json()["token"]
    assert cookie == f"__Host-csrf={token}; Path=/; Secure; SameSite=Lax"
    assert index.json()["hook"] == token  # the app's hooks run inside CSRF
    sent = {"Cookie": f"__Host-csrf={token}"}
    # HEAD and OPTIONS are no longer safe; the exception handler answers.
    for method in ("HEAD", "OPTIONS", "POST"):
        refused = client.request(method, "/anything" if method != "POST" else "/", headers=sent)
        assert refused.status_code == 403, method
    assert client.post("/", headers=sent).json() == {"refused": "CSRF token validation failed"}
    ok = client.post("/", headers={**sent, "X-XSRF-Token": token})
    assert ok.json() == {"ok": True}
    form = client.post("/", headers=sent, data={"token": token})
    assert form.json() == {"ok": True}
    _default_field = client.post("/", headers=sent, data={"_csrf": token})
    assert _default_field.status_code == 403


def test_an_unsafe_request_to_an_unknown_path_is_refused_first(new_client):
    _refused(new_client().post("/nowhere"))
    client, token = _with_token(new_client)
    assert client.post("/nowhere", headers={"X-CSRF-Token": token}).status_code == 404
    assert client.delete("/submit", headers={"X-CSRF-Token": token}).status_code == 405


# -- pieces ----------------------------------------------------------------------


def test_multipart_field():
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\ntok\r\n--XyZ--\r\n'
    )
    assert multipart_field(body, "XyZ", "_csrf") == "tok"
    assert multipart_field(body, "XyZ", "b") is None
    assert multipart_field(body, "other", "_csrf") is None
    assert multipart_field(b"garbage", "XyZ", "_csrf") is None


def test_csrf_config_defaults():
    config = CsrfConfig()
    assert config.secret is None
    assert (config.cookie_name, config.header_name, config.form_field) == (
        "_csrf", "X-CSRF-Token", "_csrf"
    )  # fmt: skip
    assert config.safe_methods == ["GET", "HEAD", "OPTIONS", "TRACE"]
    assert config.exempt_paths == []
    assert (config.cookie_secure, config.cookie_same_site) == (True, "Lax")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cookie_name": ""}, "cookie_name"),
        ({"form_field": ""}, "form_field"),
        ({"header_name": "X Bad"}, "header_name"),
        ({"cookie_same_site": "Often"}, "cookie_same_site"),
        ({"cookie_same_site": "None", "cookie_secure": False}, "needs cookie_secure"),
        ({"safe_methods": "GET"}, "safe_methods"),
        ({"exempt_paths": ["webhooks"]}, "exempt_paths"),
        ({"exempt_paths": [1]}, "exempt_paths"),
        ({"secret": b""}, "secret"),
    ],
)
def test_bad_csrf_config_is_a_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        CsrfConfig(**options)


def test_enable_csrf_arguments():
    with pytest.raises(ValueError, match="takes a CsrfConfig"):
        App().enable_csrf("secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        App().enable_csrf(CsrfConfig(), secret="x")
    App().enable_csrf(secret="x", exempt_paths=["/hooks"])


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000), boundary=st.text(min_size=1, max_size=70))
def test_multipart_field_never_raises(body, boundary):
    found = multipart_field(body, boundary.encode("utf-8", "replace").decode("latin-1"), "_csrf")
    assert found is None or isinstance(found, str)


@settings(max_examples=300, deadline=None)
@given(token=st.text(max_size=300))
def test_only_signed_tokens_verify(token):
    middleware = CsrfMiddleware(CsrfConfig(secret="s"))
    assert middleware.verify(token) is False
    assert middleware.verify(middleware.new_token()) is True
