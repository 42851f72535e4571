"""The validation tables (issue 20):

- ``validate``: ``POST /validate`` with the 1 KiB JSON body of ``/echo``,
  validated into a pydantic model and returned through the response model,
  in Cello and in FastAPI on uvicorn and on granian. Target: Cello at most
  half of FastAPI's CPU per request.
- ``depends``: ``GET /dep`` from a handler with one ``Depends`` next to a
  plain handler, both in Cello. Target: at most 1.2x.

bench.py adds these scenarios and servers to its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from settings import ECHO_BODY, Scenario, Target, payloads

VALIDATE_SCENARIO = Scenario(
    "validate", f"`POST /validate` ({len(ECHO_BODY)} B JSON body into a pydantic model)",
    "POST", "/validate", payloads.ECHO,
    "the 1 KiB body of `/echo` validated into a pydantic model (`order: Order`) and "
    "returned through the model as response model (`-> Order`): Cello against FastAPI",
    body=ECHO_BODY,
    baseline="cello-validate",
    targets=(
        Target("cello-validate", "uvicorn-fastapi-validate", 0.5,
               "Cello vs FastAPI on uvicorn, target ≤ 0.5x"),
        Target("cello-validate", "granian-fastapi-validate", 0.5,
               "Cello vs FastAPI on granian, target ≤ 0.5x"),
    ),
)  # fmt: skip

DEPENDS_SCENARIO = Scenario(
    "depends", "`GET /dep` with one `Depends`", "GET", "/dep", payloads.INDEX,
    "the hello-world answer from a handler with one `Depends(...)` parameter, next to "
    "a plain handler taking the request",
    baseline="cello-plain",
    targets=(
        Target("cello-depends", "cello-plain", 1.2,
               "One `Depends` vs a plain handler, target ≤ 1.2x"),
    ),
)  # fmt: skip


def validation_servers(
    server: Callable[..., Any],
    cello_script: Callable[..., Callable[[int], list[str]]],
    uvicorn: Callable[..., Callable[[int], list[str]]],
    granian: Callable[..., Callable[[int], list[str]]],
    uvloop: str,
) -> list[Any]:
    """The tables' rows, built with bench.py's own helpers."""
    return [
        server(
            name="cello-validate",
            description="Cello `app.run`, `def validate(order: Order) -> Order`",
            command=cello_script("cello_validation_app.py"),
            env={"PORT": "{port}", "BENCH_DEPENDS": "0"},
            scenarios=("validate",),
        ),
        server(
            name="uvicorn-fastapi-validate",
            description=f"{uvloop}, 1 worker, FastAPI `async def validate(order: Order) -> Order`",
            command=uvicorn("fastapi_validation_app:app"),
            scenarios=("validate",),
        ),
        server(
            name="granian-fastapi-validate",
            description="granian, 1 worker, FastAPI `async def validate(order: Order) -> Order`",
            command=granian("fastapi_validation_app:app", "asgi"),
            scenarios=("validate",),
        ),
        server(
            name="cello-plain",
            description="Cello `app.run`, `def plain(request)` (the baseline)",
            command=cello_script("cello_validation_app.py"),
            env={"PORT": "{port}", "BENCH_DEPENDS": "0"},
            scenarios=("depends",),
        ),
        server(
            name="cello-depends",
            description="Cello `app.run`, `def with_dependency(answer=Depends(greeting))`",
            command=cello_script("cello_validation_app.py"),
            env={"PORT": "{port}", "BENCH_DEPENDS": "1"},
            scenarios=("depends",),
        ),
    ]
