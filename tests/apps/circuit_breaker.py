"""App for tests/test_circuit_breaker.py: one circuit per blueprint, so each
test drives its own circuit through one server.

``/<circuit>/status/{code}`` answers with ``code``; ``/<circuit>/boom``
raises (a 500)."""

from __future__ import annotations

from typing import Any

from cello import App, Blueprint, Response
from cello.middleware import CircuitBreaker, CircuitBreakerConfig

# Circuits the tests open and then must find open: a reset time no test waits out.
LONG = 3600
# Circuits the tests wait to half-open: long enough that two requests sent
# back to back see the same state, short enough to wait for.
SHORT = 2


def _circuit(prefix: str, breaker: CircuitBreaker) -> Blueprint:
    bp = Blueprint(prefix)
    bp.use(breaker)

    @bp.get("/status/{code:int}")
    def status(request: Any) -> Response:
        return Response.text("answered", status=int(request.params["code"]))

    @bp.get("/boom")
    def boom(request: Any) -> None:
        raise RuntimeError("the database is down")

    return bp


app = App()
app.register_blueprint(_circuit("/opens", CircuitBreaker(failure_threshold=3, reset_timeout=LONG)))
app.register_blueprint(_circuit("/raises", CircuitBreaker(failure_threshold=2, reset_timeout=LONG)))
app.register_blueprint(
    _circuit("/codes", CircuitBreaker(CircuitBreakerConfig(1, LONG, 1, failure_codes=[503])))
)
app.register_blueprint(
    _circuit(
        "/closes", CircuitBreaker(failure_threshold=1, reset_timeout=SHORT, half_open_target=2)
    )
)
app.register_blueprint(
    _circuit(
        "/reopens", CircuitBreaker(failure_threshold=1, reset_timeout=SHORT, half_open_target=3)
    )
)


@app.get("/outside/status/{code:int}")
def outside(request: Any) -> Response:
    return Response.text("answered", status=int(request.params["code"]))


# The whole app behind one circuit, as enable_circuit_breaker() puts it.
whole = App()
whole.enable_circuit_breaker(failure_threshold=2, reset_timeout=LONG)


@whole.get("/status/{code:int}")
def whole_status(request: Any) -> Response:
    return Response.text("answered", status=int(request.params["code"]))
