"""Authentication through both doors: JWT (HS256 with issuer, audience,
cookie and skipped paths; RS256; ES256), API keys and HTTP Basic, the
attacks each must refuse (forged and tampered signatures, ``alg: none``,
algorithm confusion, expired and not-yet-valid tokens, malformed and
oversized tokens, bad Basic encodings), and the Python API's checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cello
import cello.middleware
from cello import ApiKeyAuth, App, BasicAuth, JwtAuth, JwtConfig, validate_jwt_config
from cello.testing import TestClient
from tests.apps import auth as apps
from tests.live import LiveServer

PROBLEM = "application/problem+json"
INVALID = 'Bearer error="invalid_token"'
NOT_ALLOWED = "Token algorithm not allowed"


class Door:
    def __init__(self, name: str, client: httpx.Client, live: LiveServer | None) -> None:
        self.name = name
        self.client = client
        self.live = live


@pytest.fixture(scope="module", params=["native", "asgi"])
def door(request: pytest.FixtureRequest) -> Iterator[Door]:
    if request.param == "native":
        with LiveServer("tests.apps.auth:app", "--env", "production") as live:
            with httpx.Client(base_url=live.url, timeout=10) as client:
                yield Door("native", client, live)
    else:
        with TestClient(apps.app) as client:
            yield Door("asgi", client, None)


def claims(**extra: Any) -> dict[str, Any]:
    base = {"sub": "alice", "roles": ["admin"], "permissions": ["read"], "iss": apps.ISSUER,
            "aud": apps.AUDIENCE, "exp": int(time.time()) + 600}  # fmt: skip
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], key: str | bytes = apps.SECRET) -> str:
    return jwt.encode(payload, key, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(
    header: dict[str, Any], payload: dict[str, Any], key: bytes, digest: str = "sha256"
) -> str:
    """A token signed with HMAC under any header, as an attacker can."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), getattr(hashlib, digest)).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def refused(response: httpx.Response, detail: str, challenge: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["detail"] == detail
    assert response.headers.get_list("www-authenticate") == [challenge]


# -- JWT ---------------------------------------------------------------------


def test_a_valid_token_s_claims_are_the_user_and_jwt_claims(door):
    sent = claims()
    response = door.client.get("/jwt/me", headers=bearer(hs256(sent)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == sent
    assert body["jwt_claims"] == sent
    assert body["user"]["sub"] == "alice"
    assert body["user"]["roles"] == ["admin"]


def test_a_missing_token_is_refused_with_a_bearer_challenge(door):
    refused(door.client.get("/jwt/me"), "Missing authentication token", "Bearer")
    refused(door.client.post("/jwt/me", content=b"{}"), "Missing authentication token", "Bearer")
    # Authentication comes before routing: an unknown path under the
    # protected prefix is a 401, not a 404 telling what exists.
    refused(door.client.get("/jwt/nowhere"), "Missing authentication token", "Bearer")


@pytest.mark.parametrize(
    "value", ["Basic {t}", "Token {t}", "Bearer{t}", "Bearer", "{t}", "Bearerx {t}"]
)
def test_a_token_without_the_bearer_scheme_is_no_token(door, value):
    header = value.format(t=hs256(claims()))
    response = door.client.get("/jwt/me", headers={"authorization": header})
    refused(response, "Missing authentication token", "Bearer")


def test_the_scheme_is_case_insensitive(door):
    response = door.client.get("/jwt/me", headers={"authorization": f"bEaReR {hs256(claims())}"})
    assert response.status_code == 200


def test_time_claims_are_checked(door):
    now = int(time.time())
    expired = door.client.get("/jwt/me", headers=bearer(hs256(claims(exp=now - 3600))))
    refused(expired, "Token has expired", INVALID)
    early = door.client.get("/jwt/me", headers=bearer(hs256(claims(nbf=now + 3600))))
    refused(early, "Token is not valid yet", INVALID)
    no_expiry = door.client.get("/jwt/me", headers=bearer(hs256(claims(exp=None))))
    refused(no_expiry, "Token has no expiry (exp claim)", INVALID)


@pytest.mark.parametrize(
    ("changed", "detail"),
    [({"iss": "https://evil.test"}, "Invalid issuer"), ({"iss": None}, "Invalid issuer"),
     ({"aud": "someone-else"}, "Invalid audience"), ({"aud": None}, "Invalid audience"),
     ({"aud": ["someone-else"]}, "Invalid audience")],
)  # fmt: skip
def test_issuer_and_audience_must_match(door, changed, detail):
    response = door.client.get("/jwt/me", headers=bearer(hs256(claims(**changed))))
    refused(response, detail, INVALID)


def test_forged_and_tampered_tokens_are_refused(door):
    forged = hs256(claims(), key="another-secret-that-is-also-long-enough")
    refused(door.client.get("/jwt/me", headers=bearer(forged)), "Invalid token signature", INVALID)
    header, _, signature = hs256(claims()).split(".")
    promoted = b64(json.dumps(claims(roles=["superuser"])).encode())
    tampered = f"{header}.{promoted}.{signature}"
    response = door.client.get("/jwt/me", headers=bearer(tampered))
    refused(response, "Invalid token signature", INVALID)


def test_alg_none_is_not_allowed(door):
    for alg in ("none", "None", "NONE"):
        token = f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}."
        token += f"{b64(json.dumps(claims()).encode())}."
        response = door.client.get("/jwt/me", headers=bearer(token))
        refused(response, "Token algorithm not allowed", INVALID)
    unsigned = jwt.encode(claims(), None, algorithm="none")
    response = door.client.get("/jwt/me", headers=bearer(unsigned))
    refused(response, "Token algorithm not allowed", INVALID)


def test_only_the_configured_algorithm_is_accepted(door):
    hs512 = hand_signed({"alg": "HS512"}, claims(), apps.SECRET.encode(), "sha512")
    refused(door.client.get("/jwt/me", headers=bearer(hs512)), NOT_ALLOWED, INVALID)


def test_algorithm_confusion_with_the_rsa_public_key_as_secret_is_refused(door):
    public_pem = (apps.KEYS / "rsa.pub").read_bytes()
    confused = hand_signed({"alg": "HS256", "typ": "JWT"}, claims(), public_pem)
    response = door.client.get("/rs/me", headers=bearer(confused))
    refused(response, "Token algorithm not allowed", INVALID)


@pytest.mark.parametrize(
    "token",
    ["abc", "abc.def", "a.b.c", "!!!.@@@.###", "eyJhbGciOiJIUzI1NiJ9.%%%.xyz",
     "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "....", "e30.e30.e30"],
)  # fmt: skip
def test_malformed_tokens_are_refused(door, token):
    response = door.client.get("/jwt/me", headers=bearer(token))
    assert response.status_code == 401
    # The signature is checked before the claims are parsed.
    assert response.json()["detail"] in (
        "Malformed token",
        "Token algorithm not allowed",
        "Invalid token signature",
    )
    assert response.headers["www-authenticate"] == INVALID


def test_a_huge_token_is_refused_without_being_decoded(door):
    huge = "a" * 6000 + "." + "b" * 6000 + ".c"
    response = door.client.get("/jwt/me", headers=bearer(huge))
    if door.name == "native" and response.status_code == 431:
        # The native server's header limit (8 KiB) stops it first.
        assert door.client.get("/").status_code == 200
        return
    refused(response, "Token is too large", INVALID)


def test_the_token_may_come_in_a_cookie(door):
    good = door.client.get(
        "/jwt/me", headers={"cookie": f"theme=dark; access_token={hs256(claims())}"}
    )
    assert good.status_code == 200
    assert good.json()["user"]["sub"] == "alice"
    bad = door.client.get("/jwt/me", headers={"cookie": "access_token=not.a.token"})
    refused(bad, "Malformed token", INVALID)
    other = door.client.get("/jwt/me", headers={"cookie": "access_tokenx=abc"})
    refused(other, "Missing authentication token", "Bearer")


def test_skipped_paths_and_preflights_need_no_token(door):
    assert door.client.get("/jwt/login").json() == {"login": True}
    assert door.client.get("/jwt/public/info").json() == {"public": True}
    refused(door.client.get("/jwt/loginx"), "Missing authentication token", "Bearer")
    preflight = door.client.options(
        "/jwt/me",
        headers={"origin": "https://example.com", "access-control-request-method": "GET",
                 "access-control-request-headers": "authorization"},
    )  # fmt: skip
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://example.com"
    assert door.client.get("/").json() == {"open": True}


def test_rs256_and_es256_verify_with_public_keys(door):
    rsa_private = (apps.KEYS / "rsa.pem").read_bytes()
    ec_private = (apps.KEYS / "ec.pem").read_bytes()
    rs = jwt.encode(claims(iss=None, aud=None), rsa_private, algorithm="RS256")
    es = jwt.encode(claims(iss=None, aud=None), ec_private, algorithm="ES256")
    assert door.client.get("/rs/me", headers=bearer(rs)).json()["user"]["sub"] == "alice"
    assert door.client.get("/es/me", headers=bearer(es)).json()["user"]["sub"] == "alice"
    refused(door.client.get("/es/me", headers=bearer(rs)), "Token algorithm not allowed", INVALID)
    rs384 = jwt.encode(claims(iss=None, aud=None), rsa_private, algorithm="RS384")
    refused(door.client.get("/rs/me", headers=bearer(rs384)), NOT_ALLOWED, INVALID)


def test_a_mounted_asgi_app_is_behind_the_layer_too(door):
    refused(door.client.get("/legacy/hello"), "Missing authentication token", "Bearer")
    response = door.client.get("/legacy/hello", headers=bearer(hs256(claims())))
    assert response.json() == {"starlette": "/legacy/hello"}


# -- API keys ------------------------------------------------------------------

KEY_CHALLENGE = 'ApiKey header="x-api-key"'


def test_an_api_key_names_its_holder(door):
    response = door.client.get("/key/me", headers={"x-api-key": "key-beta-0123456789"})
    assert response.status_code == 200
    body = response.json()
    assert body["api_key_name"] == "beta"
    assert body["user"] == {"name": "beta"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "Missing API key"), ({"x-api-key": ""}, "Missing API key"),
     ({"authorization": "key-alpha-0123456789"}, "Missing API key"),
     ({"x-api-key": "key-alpha-012345678"}, "Invalid API key"),
     ({"x-api-key": "key-alpha-0123456789x"}, "Invalid API key"),
     ({"x-api-key": "KEY-ALPHA-0123456789"}, "Invalid API key"),
     ({"x-api-key": "alpha"}, "Invalid API key")],
)  # fmt: skip
def test_missing_and_wrong_api_keys_are_refused(door, headers, detail):
    refused(door.client.get("/key/me", headers=headers), detail, KEY_CHALLENGE)


def test_an_api_key_may_carry_roles_for_guards(door):
    response = door.client.get("/key/me", headers={"x-api-key": "key-gamma-0123456789"})
    body = response.json()
    assert body["api_key_name"] == "gamma"
    assert body["user"] == {"name": "gamma", "roles": ["service"], "permissions": ["read"]}


def test_api_key_skip_paths(door):
    assert door.client.get("/key/login").json() == {"login": True}


# -- Basic -----------------------------------------------------------------------


def basic(raw: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def test_basic_credentials_verified_by_the_app(door):
    # The password holds a colon: only the first one separates.
    response = door.client.get("/basic/me", headers=basic(b"alice:wonder:land"))
    assert response.status_code == 200, response.text
    assert response.json()["user"] == {"username": "alice"}
    assert response.json()["basic_auth_user"] == "alice"
    utf8 = basic("ädmin:pässword".encode())
    assert door.client.get("/abasic/me", headers=utf8).json()["user"] == {"username": "ädmin"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "Missing credentials"), ({"authorization": "Bearer abc"}, "Missing credentials"),
     (basic(b"alice:wrong"), "Invalid credentials"),
     (basic(b"bob:wonder:land"), "Invalid credentials"),
     (basic(b"alice"), "Malformed credentials"), (basic(b"\xff\xfe:\xff"), "Malformed credentials"),
     ({"authorization": "Basic %%%notbase64"}, "Malformed credentials"),
     ({"authorization": "Basic YWxpY2U6d29uZGVyOmxhbmQ"}, "Malformed credentials")],
)  # fmt: skip
def test_bad_basic_credentials_are_refused_with_the_realm(door, headers, detail):
    refused(door.client.get("/basic/me", headers=headers), detail, 'Basic realm="Restricted"')


def test_the_realm_is_quoted(door):
    response = door.client.get("/abasic/me")
    refused(response, "Missing credentials", 'Basic realm="Admin \\"zone\\" \\\\ 1"')


def test_an_error_in_verify_is_a_500_that_does_not_log_the_password(door):
    response = door.client.get("/basic/me", headers=basic(b"boom:hunter2-secret"))
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "hunter2" not in response.text
    if door.live is not None:
        log = door.live.stderr()
        assert "BasicAuth verify() raised KeyError" in log
        assert "hunter2" not in log
    assert door.client.get("/basic/me", headers=basic(b"alice:wonder:land")).status_code == 200


# -- the Python API ----------------------------------------------------------------


def test_exports():
    for name in ("JwtConfig", "JwtAuth", "ApiKeyAuth", "BasicAuth", "validate_jwt_config",
                 "constant_time_compare"):  # fmt: skip
        assert getattr(cello, name) is getattr(cello.middleware, name)
        assert name in cello.__all__
        assert name in cello.middleware.__all__


def test_jwt_config_defaults_and_attributes():
    config = JwtConfig(b"bytes-secret")
    assert (config.algorithm, config.header_name, config.cookie_name, config.leeway,
            config.expiration, config.issuer, config.audience, config.header_prefix) == (
        "HS256", "Authorization", None, 0, 3600, None, None, "Bearer")  # fmt: skip
    config.leeway = 30
    config.algorithm = "hs512"
    validate_jwt_config(config)
    assert "bytes-secret" not in repr(config)
    assert "bytes-secret" not in repr(JwtAuth(config))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"secret": ""}, "secret must not be empty"), ({"secret": b""}, "secret must not be empty"),
     ({"secret": 42}, "secret must be a str or bytes"),
     ({"secret": "s", "algorithm": "none"}, "algorithm 'none' is not supported"),
     ({"secret": "s", "algorithm": "EdDSA"}, "algorithm 'EdDSA' is not supported"),
     ({"secret": "plain-secret", "algorithm": "RS256"}, "must be a PEM public key"),
     ({"secret": "-----BEGIN PRIVATE KEY-----\nabc", "algorithm": "ES256"}, "not the private key"),
     ({"secret": "s", "leeway": -1}, "leeway must be a whole number"),
     ({"secret": "s", "leeway": 10**9}, "leeway must be at most"),
     ({"secret": "s", "expiration": 0}, "expiration must be a whole number"),
     ({"secret": "s", "header_name": ""}, "header_name"),
     ({"secret": "s", "cookie_name": ""}, "cookie_name"),
     ({"secret": "s", "issuer": [""]}, "issuer"),
     ({"secret": "s", "audience": 5}, "audience")],
)  # fmt: skip
def test_validate_jwt_config_names_the_problem(kwargs, message):
    config = JwtConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        validate_jwt_config(config)
    with pytest.raises(ValueError, match=message):
        App().enable_jwt(config)


def test_an_unusable_key_fails_when_the_middleware_is_added():
    broken = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"
    with pytest.raises(ValueError, match="not an RSA public key"):
        App().use(JwtAuth(JwtConfig(broken, algorithm="RS256")))
    ec_key = (apps.KEYS / "ec.pub").read_text()
    with pytest.raises(ValueError, match="not an RSA public key"):
        App().enable_jwt(JwtConfig(ec_key, algorithm="RS256"))
    with pytest.raises(ValueError, match="P-384"):
        App().enable_jwt(JwtConfig(ec_key, algorithm="ES384"))


def test_skip_paths_are_checked_and_chainable():
    auth = JwtAuth(JwtConfig("s"), skip_paths=["/a"])
    assert auth.skip_path("/b") is auth
    assert auth.skip_paths == ["/a", "/b"]
    with pytest.raises(ValueError, match="starting with '/'"):
        auth.skip_path("login")
    with pytest.raises(TypeError, match="JwtConfig"):
        JwtAuth("secret")  # type: ignore[arg-type]


def test_enable_jwt_is_use_jwt_auth():
    app = App()
    app.enable_jwt(JwtConfig(apps.SECRET), skip_paths=["/open"])

    @app.get("/open")
    def open_route():
        return {"open": True}

    @app.get("/closed")
    def closed():
        return {"closed": True}

    with TestClient(app) as client:
        assert client.get("/open").status_code == 200
        refused(client.get("/closed"), "Missing authentication token", "Bearer")
        token = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, apps.SECRET)
        assert client.get("/closed", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [(({},), "non-empty dict"), (([("k", "n")],), "non-empty dict"), (({"": "n"},), "non-empty"),
     (({" k": "n"},), "whitespace"), (({"k": 1},), "names must be str"),
     (({"k": {"roles": []}},), "names must be str"),
     (({"k": {"name": "n", "x": {1}}},), "not JSON"),
     (({"k": "n"}, ""), "header"), (({"k": "n"}, "X-Key", ["rel"]), "starting with '/'")],
)  # fmt: skip
def test_api_key_auth_checks_its_options(args, message):
    with pytest.raises(ValueError, match=message):
        ApiKeyAuth(*args)


def test_an_api_key_header_that_is_no_header_name_fails_when_added():
    with pytest.raises(ValueError, match="not a header name"):
        App().use(ApiKeyAuth({"k": "n"}, header="bad header"))
    assert "k'" not in repr(ApiKeyAuth({"k": "n"}))


def test_basic_auth_checks_its_options():
    with pytest.raises(TypeError, match="verify"):
        BasicAuth("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="realm"):
        BasicAuth(lambda u, p: True, realm="line\r\nbreak")


def test_constant_time_compare():
    compare = cello.constant_time_compare
    assert compare("secret", "secret")
    assert compare(b"secret", b"secret")
    assert not compare("secret", "secreT")
    assert not compare("secret", "secret-longer")
    assert compare("", "")
    assert compare("ünïcode", "ünïcode")
    with pytest.raises(TypeError, match="two str or two bytes"):
        compare("secret", b"secret")
    with pytest.raises(TypeError, match="two str or two bytes"):
        compare(1, 1)  # type: ignore[arg-type]


# -- any header value -------------------------------------------------------------

# Header values as a client can send them: visible ASCII, spaces and
# Latin-1 (obs-text) bytes; no line breaks.
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=300,
).map(str.strip)
SCHEMES = st.sampled_from(["", "Bearer ", "bearer ", "Basic ", "Bearer Bearer "])


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[httpx.Client]:
    """The three kinds on an app of their own: a TestClient per example
    would start and stop the shared app's mounted app each time."""
    app = App()
    app.register_blueprint(apps._protected("/jwt", JwtAuth(apps.jwt_config)))
    app.register_blueprint(apps._protected("/basic", BasicAuth(apps._verify)))
    app.register_blueprint(apps._protected("/key", ApiKeyAuth(apps.API_KEYS)))
    with TestClient(app) as client:
        yield client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=SCHEMES, value=HEADER_TEXT)
def test_no_authorization_header_is_anything_but_a_401(fuzz_client, scheme, value):
    header = (scheme + value).strip().encode("latin-1")
    for path in ("/jwt/me", "/basic/me"):
        response = fuzz_client.get(path, headers={"authorization": header})
        assert response.status_code == 401, (path, header, response.text)
        assert response.headers["content-type"] == PROBLEM
    key = fuzz_client.get("/key/me", headers={"x-api-key": header})
    assert key.status_code == 401
