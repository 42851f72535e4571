"""The app behind the authentication conformance cases: JWT on ``/jwt``
(skipping ``/jwt/login``), API keys on ``/key``, Basic on ``/basic``, and
tokens made here so every door is sent the same bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cello import ApiKeyAuth, App, BasicAuth, Blueprint, JwtAuth, JwtConfig

SECRET = b"conformance-secret-conformance-secret"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims: dict[str, object], alg: str = "HS256", key: bytes = SECRET) -> str:
    """An HS256 token (or any header's, signed HS256), made by hand."""
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


# exp in 2100 and in 2001: fixed, so the cases are the same bytes every run.
VALID = token({"sub": "alice", "roles": ["admin"], "exp": 4102444800})
EXPIRED = token({"sub": "alice", "exp": 1000000000})
FORGED = token({"sub": "alice", "exp": 4102444800}, key=b"not-the-secret")
# The valid token's claims under an unsigned header.
NONE = _b64(b'{"alg":"none"}') + "." + VALID.split(".")[1] + "."


def _me(request):
    return {"user": request.context.get("user")}


def _protected(prefix: str, middleware: object) -> Blueprint:
    blueprint = Blueprint(prefix)
    blueprint.use(middleware)
    blueprint.get("/me")(_me)
    blueprint.get("/login")(lambda: {"login": True})
    return blueprint


app = App()
app.register_blueprint(_protected("/jwt", JwtAuth(JwtConfig(SECRET)).skip_path("/jwt/login")))
app.register_blueprint(_protected("/key", ApiKeyAuth({"conformance-key": "robot"})))
app.register_blueprint(
    _protected("/basic", BasicAuth(lambda user, password: (user, password) == ("ann", "pw")))
)
