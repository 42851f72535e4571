"""The circuit breaker through both doors: it opens after a run of
failures (handler exceptions included), answers 503 with Retry-After
without reaching the handler, ignores client errors, half-opens after its
reset timeout, closes after enough successes and reopens on a failure; and
``CircuitBreakerConfig``'s validation.

The breaker's clock is not injectable from Python, so the tests that need
the reset timeout to pass poll until it has (see tests/apps/circuit_breaker.py
for the timeouts); the exact timings are covered by the Rust unit tests,
which move a fake clock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

import cello.middleware
from cello import App, Blueprint
from cello.middleware import CircuitBreaker, CircuitBreakerConfig
from cello.testing import TestClient
from tests.apps.circuit_breaker import LONG, SHORT
from tests.live import door_client

OPEN_BODY_START = (
    '{"type":"about:blank","title":"Service Unavailable","status":503,'
    '"detail":"Service temporarily unavailable","retry_after":'
)


def _client(door: str, name: str) -> Iterator[httpx.Client]:
    yield from door_client(door, f"tests.apps.circuit_breaker:{name}", "--env", "production")


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def whole(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "whole")


def assert_open(response: httpx.Response, longest: int) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.text.startswith(OPEN_BODY_START)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= longest
    assert response.json()["retry_after"] == retry_after
    assert "answered" not in response.text


def wait_until_admitted(client: httpx.Client, path: str) -> httpx.Response:
    """Polls ``path`` until the open circuit lets it through."""
    deadline = time.monotonic() + 30 * SHORT
    while time.monotonic() < deadline:
        response = client.get(path)
        if response.status_code != 503 or "answered" in response.text:
            return response
        time.sleep(0.05)
    raise AssertionError(f"{path} stayed refused")


def test_a_run_of_failures_opens_the_circuit_and_the_handler_is_not_reached(client):
    assert client.get("/opens/status/500").status_code == 500
    assert client.get("/opens/status/502").status_code == 502
    # Client errors are neither failures nor successes.
    assert client.get("/opens/status/404").status_code == 404
    assert client.get("/opens/status/429").status_code == 429
    assert client.get("/opens/status/503").text == "answered"
    # That was the third failure in a row: the circuit is open now.
    assert_open(client.get("/opens/status/200"), LONG)
    assert_open(client.post("/opens/status/200"), LONG)  # every method, even a 405
    assert_open(client.get("/opens/nowhere"), LONG)  # and unknown paths below the circuit
    # Other paths have no circuit or their own.
    assert client.get("/outside/status/500").status_code == 500
    assert client.get("/outside/status/200").text == "answered"
    assert client.get("/raises/status/200").status_code == 200


def test_a_success_resets_the_run(client):
    for _ in range(5):
        assert client.get("/codes/status/500").status_code == 500  # not a failure code here
    assert client.get("/codes/status/200").status_code == 200
    assert client.get("/codes/status/503").status_code == 503
    assert_open(client.get("/codes/status/200"), LONG)


def test_handler_exceptions_count_as_failures(client):
    assert client.get("/raises/boom").status_code == 500
    assert client.get("/raises/boom").status_code == 500
    assert_open(client.get("/raises/status/200"), LONG)


def test_half_open_successes_close_it(client):
    assert client.get("/closes/status/500").status_code == 500
    assert_open(client.get("/closes/status/200"), SHORT)
    first = wait_until_admitted(client, "/closes/status/200")
    assert first.status_code == 200
    assert client.get("/closes/status/200").status_code == 200
    # Closed: with a threshold of 1, the next failure opens it again.
    assert client.get("/closes/status/504").status_code == 504
    assert_open(client.get("/closes/status/200"), SHORT)


def test_a_failure_while_half_open_reopens_it(client):
    assert client.get("/reopens/status/500").status_code == 500
    probe = wait_until_admitted(client, "/reopens/status/500")
    assert probe.status_code == 500 and probe.text == "answered"
    assert_open(client.get("/reopens/status/200"), SHORT)


def test_enable_circuit_breaker_covers_the_whole_app(whole):
    assert whole.get("/status/500").status_code == 500
    assert whole.get("/status/503").status_code == 503
    assert_open(whole.get("/status/200"), LONG)
    assert_open(whole.get("/nowhere"), LONG)


# -- configuration -------------------------------------------------------------


def test_defaults_and_exports():
    config = CircuitBreakerConfig()
    assert (config.failure_threshold, config.reset_timeout, config.half_open_target) == (5, 30, 3)
    assert config.failure_codes == (500, 502, 503, 504)
    assert CircuitBreaker().config == config
    assert CircuitBreaker(config).config is config
    assert CircuitBreaker(failure_threshold=2).config.failure_threshold == 2
    assert cello.middleware.CircuitBreaker is CircuitBreaker
    assert {"CircuitBreaker", "CircuitBreakerConfig"} <= set(cello.middleware.__all__)
    assert CircuitBreaker()._layer()[0] == "circuit_breaker"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be a whole number >= 1"),
        ({"failure_threshold": 1.5}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"half_open_target": 0}, "half_open_target must be a whole number >= 1"),
        ({"reset_timeout": 0}, "reset_timeout must be a number of seconds > 0"),
        ({"reset_timeout": -1}, "reset_timeout"),
        ({"reset_timeout": float("nan")}, "reset_timeout"),
        ({"reset_timeout": float("inf")}, "reset_timeout"),
        ({"reset_timeout": "30"}, "reset_timeout"),
        ({"failure_codes": [500, 600]}, "failure_codes: 600 is not an HTTP status code"),
        ({"failure_codes": [99]}, "failure_codes: 99"),
        ({"failure_codes": [404]}, "failure_codes: 404 is a client error"),
        ({"failure_codes": []}, "failure_codes must name at least one"),
        ({"failure_codes": "500"}, "failure_codes must be a list"),
        ({"failure_codes": ["500"]}, "failure_codes: '500'"),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        CircuitBreakerConfig(**options)
    with pytest.raises(ValueError, match=message):
        App().enable_circuit_breaker(**options)


def test_config_or_options_not_both():
    with pytest.raises(ValueError, match="not both"):
        CircuitBreaker(CircuitBreakerConfig(), failure_threshold=2)
    with pytest.raises(ValueError, match="CircuitBreakerConfig"):
        CircuitBreaker({"failure_threshold": 2})  # type: ignore[arg-type]


def test_a_blueprint_circuit_is_a_scoped_native_layer():
    app = App()
    bp = Blueprint("/api")
    bp.use(CircuitBreaker())
    app.register_blueprint(bp)
    app.enable_circuit_breaker()
    assert ("CircuitBreaker", "/api") in app._core.layers()
    assert ("CircuitBreaker", "") in app._core.layers()


def test_a_mounted_app_s_failures_open_the_circuit_around_it():
    async def failing(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"bad gateway"})

    app = App()
    app.mount("/legacy", failing)
    app.use(CircuitBreaker(failure_threshold=2, reset_timeout=LONG))
    with TestClient(app) as client:
        assert client.get("/legacy/x").status_code == 502
        assert client.get("/legacy/x").status_code == 502
        assert_open(client.get("/legacy/x"), LONG)
