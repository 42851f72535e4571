"""The JWT table: ``GET /`` with a valid HS256 bearer token, through Cello
without authentication (the baseline), Cello with ``enable_jwt()``, and
FastAPI with ``HTTPBearer`` + PyJWT on uvicorn and on granian.

The issue's target: Cello's JWT verification adds at most 3 µs of CPU per
request over no authentication, and Cello with JWT leads FastAPI + PyJWT.
bench.py adds this module's scenario and servers to its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from settings import Scenario, Target, payloads

# Importable once settings has put the apps' directory on sys.path.
TOKEN = importlib.import_module("jwt_payloads").TOKEN

JWT_SCENARIO = Scenario(
    "jwt", "`GET /` with a JWT (HS256 bearer token)", "GET", "/", payloads.INDEX,
    "the hello-world request carrying `Authorization: Bearer <HS256 token>`: Cello "
    "without authentication (the token ignored), Cello verifying it with `enable_jwt()`, "
    "and FastAPI's `HTTPBearer` with a PyJWT-verifying dependency",
    baseline="cello-noauth",
    headers=(("Authorization", f"Bearer {TOKEN}"),),
    targets=(
        Target("cello-jwt", "cello-noauth", None,
               "What JWT verification adds in Cello, target ≤ 3 µs", extra_us_at_most=3.0),
        Target("cello-jwt", "uvicorn-fastapi-jwt", 1.0,
               "Cello with JWT vs FastAPI + PyJWT on uvicorn, Cello must lead (≤ 1x)"),
        Target("cello-jwt", "granian-fastapi-jwt", 1.0,
               "Cello with JWT vs FastAPI + PyJWT on granian, Cello must lead (≤ 1x)"),
    ),
)  # fmt: skip


def jwt_servers(
    server: Callable[..., Any],
    cello_script: Callable[..., Callable[[int], list[str]]],
    uvicorn: Callable[..., Callable[[int], list[str]]],
    granian: Callable[..., Callable[[int], list[str]]],
    uvloop: str,
) -> list[Any]:
    """The table's rows, built with bench.py's own helpers."""
    return [
        server(
            name="cello-noauth",
            description="Cello `app.run`, no authentication (the JWT table's baseline)",
            command=cello_script("cello_jwt_app.py"),
            env={"PORT": "{port}", "BENCH_CELLO_MIDDLEWARE": "", "BENCH_JWT": "0"},
            scenarios=("jwt",),
        ),
        server(
            name="cello-jwt",
            description="Cello `app.run` with `enable_jwt(JwtConfig(secret))` (HS256)",
            command=cello_script("cello_jwt_app.py"),
            env={"PORT": "{port}", "BENCH_CELLO_MIDDLEWARE": "", "BENCH_JWT": "1"},
            scenarios=("jwt",),
        ),
        server(
            name="uvicorn-fastapi-jwt",
            description=f"{uvloop}, 1 worker, FastAPI `HTTPBearer` + PyJWT",
            command=uvicorn("fastapi_jwt_app:app"),
            scenarios=("jwt",),
        ),
        server(
            name="granian-fastapi-jwt",
            description="granian, 1 worker, FastAPI `HTTPBearer` + PyJWT",
            command=granian("fastapi_jwt_app:app", "asgi"),
            scenarios=("jwt",),
        ),
    ]
