"""The app behind tests/test_auth.py: one blueprint per kind of
authentication, each scoped to its prefix, plus an unprotected route.

- ``/jwt``: HS256 with an issuer, an audience, a cookie source and skipped
  paths; CORS is on for the whole app, so preflights can be checked.
- ``/rs`` and ``/es``: RS256 and ES256 with PEM public keys.
- ``/key``: API keys.
- ``/basic`` (sync ``verify``) and ``/abasic`` (async ``verify``, a realm
  that needs quoting).
- ``/legacy``: a mounted Starlette app behind the same JWT configuration.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from cello import ApiKeyAuth, App, BasicAuth, Blueprint, JwtAuth, JwtConfig

KEYS = Path(__file__).with_name("auth_keys")
SECRET = "a-test-secret-that-is-long-enough-for-hs256"
ISSUER = "https://issuer.test"
AUDIENCE = "cello-tests"
API_KEYS = {
    "key-alpha-0123456789": "alpha",
    "key-beta-0123456789": "beta",
    "key-gamma-0123456789": {"name": "gamma", "roles": ["service"], "permissions": ["read"]},
}


def _whoami(request):
    return {
        "user": request.context.get("user"),
        "jwt_claims": request.context.get("jwt_claims"),
        "api_key_name": request.context.get("api_key_name"),
        "basic_auth_user": request.context.get("basic_auth_user"),
    }


def _protected(prefix: str, middleware: object) -> Blueprint:
    blueprint = Blueprint(prefix)
    blueprint.use(middleware)
    blueprint.get("/me")(_whoami)
    blueprint.get("/login")(lambda: {"login": True})
    blueprint.get("/public/info")(lambda: {"public": True})
    blueprint.post("/me")(_whoami)
    return blueprint


def _verify(username: str, password: str) -> bool:
    if username == "boom":
        raise KeyError(password)
    return username == "alice" and password == "wonder:land"


async def _verify_async(username: str, password: str) -> bool:
    return username == "ädmin" and password == "pässword"


app = App()
app.enable_cors(["https://example.com"], allow_headers=["Authorization"])


@app.get("/")
def index():
    return {"open": True}


jwt_config = JwtConfig(
    SECRET, issuer=ISSUER, audience=AUDIENCE, cookie_name="access_token", leeway=5
)
app.register_blueprint(
    _protected("/jwt", JwtAuth(jwt_config).skip_path("/jwt/login").skip_path("/jwt/public"))
)
app.register_blueprint(
    _protected("/rs", JwtAuth(JwtConfig((KEYS / "rsa.pub").read_text(), algorithm="RS256")))
)
app.register_blueprint(
    _protected("/es", JwtAuth(JwtConfig((KEYS / "ec.pub").read_bytes(), algorithm="ES256")))
)
app.register_blueprint(_protected("/key", ApiKeyAuth(API_KEYS, skip_paths=["/key/login"])))
app.register_blueprint(_protected("/basic", BasicAuth(_verify)))
app.register_blueprint(_protected("/abasic", BasicAuth(_verify_async, realm='Admin "zone" \\ 1')))


async def _legacy_hello(request):
    return JSONResponse({"starlette": request.url.path})


legacy_guard = Blueprint("/legacy")
legacy_guard.use(JwtAuth(jwt_config))
app.register_blueprint(legacy_guard)
app.mount("/legacy", Starlette(routes=[Route("/hello", _legacy_hello)]))
