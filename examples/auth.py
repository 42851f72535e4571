"""Authentication: a login route that issues JWTs, routes that need one,
a service API behind API keys, and an operations page behind HTTP Basic.

Run it with::

    JWT_SECRET=change-me-to-32-random-bytes python examples/auth.py
    # or: uvicorn examples.auth:app

then::

    # log in: a token for one hour
    curl -s -X POST http://127.0.0.1:8000/login \\
         -H 'content-type: application/json' -d '{"username": "ada", "password": "lovelace"}'

    # the token's claims are request.context["user"]
    curl -s http://127.0.0.1:8000/me -H "Authorization: Bearer $TOKEN"

    # no token, or a bad one: 401 problem with WWW-Authenticate: Bearer
    curl -i http://127.0.0.1:8000/me

    # a service calls with its API key
    curl -s http://127.0.0.1:8000/service/status -H 'X-API-Key: svc-0f3c9a7e51'

    # operators use Basic authentication
    curl -s -u ops:correct-horse http://127.0.0.1:8000/ops/stats
"""

import base64
import hashlib
import hmac
import json
import os
import time

from cello import (
    ApiKeyAuth,
    App,
    BasicAuth,
    Blueprint,
    HTTPException,
    JwtAuth,
    JwtConfig,
    constant_time_compare,
)

# A real app loads the secret from its environment and never ships one.
config = JwtConfig(
    os.environ.get("JWT_SECRET", "dev-only-secret-dev-only-secret!"),
    issuer="https://example.com",
    expiration=3600,
)

# Passwords are stored hashed; the demo hashes them at start-up.
_SALT = b"demo-salt"


def _hash(password: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), _SALT, 100_000).hex()


USERS = {"ada": {"password": _hash("lovelace"), "roles": ["admin"]}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue_token(subject: str, roles: list[str]) -> str:
    """An HS256 JWT for ``subject`` (PyJWT's ``jwt.encode`` does the same)."""
    now = int(time.time())
    claims = {"sub": subject, "roles": roles, "iss": config.issuer, "iat": now,
              "exp": now + config.expiration}  # fmt: skip
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    secret = config.secret.encode() if isinstance(config.secret, str) else config.secret
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


app = App()
# Every path needs a token except /login and the blueprints with their own
# authentication.
app.use(JwtAuth(config).skip_path("/login").skip_path("/service").skip_path("/ops"))


@app.post("/login")
def login(request):
    body = request.json()
    user = USERS.get(body.get("username", ""))
    # Hash whatever was given so an unknown user takes as long as a known one.
    given = _hash(str(body.get("password", "")))
    if user is None or not constant_time_compare(given, user["password"]):
        raise HTTPException(401, "Wrong username or password")
    return {"access_token": issue_token(body["username"], user["roles"]), "token_type": "bearer"}


@app.get("/me")
def me(request):
    user = request.context["user"]
    return {"sub": user["sub"], "roles": user["roles"]}


@app.get("/admin")
def admin(request):
    if "admin" not in request.context["user"].get("roles", []):
        raise HTTPException(403, "Admins only")
    return {"admin": True}


service = Blueprint("/service")
service.use(ApiKeyAuth({"svc-0f3c9a7e51": "billing"}))


@service.get("/status")
def status(request):
    return {"caller": request.context["api_key_name"]}


ops = Blueprint("/ops")
OPS_PASSWORD = _hash("correct-horse")


def verify_operator(username: str, password: str) -> bool:
    return username == "ops" and constant_time_compare(_hash(password), OPS_PASSWORD)


ops.use(BasicAuth(verify_operator, realm="Operations"))


@ops.get("/stats")
def stats(request):
    return {"operator": request.context["basic_auth_user"]}


app.register_blueprint(service)
app.register_blueprint(ops)

if __name__ == "__main__":
    app.run()
