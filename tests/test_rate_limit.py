"""Rate limiting through both doors: the budget headers, the 429 problem and
its ``Retry-After``, exempt paths, trusted proxies against spoofed
forwarding headers, keys by header, ``key_func`` and user, the sliding
window, the adaptive limit shrinking as errors rise, the config classes,
and one budget shared by two worker processes."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import httpx
import pytest

import cello
import cello.middleware
from cello import App, RateLimitConfig, validate_rate_limit_config
from cello.middleware import AdaptiveRateLimitConfig
from cello.testing import TestClient
from tests.apps import rate_limit as apps
from tests.live import LiveServer

DETAIL = "Rate limit exceeded. Please try again later."


def _client(door: str, name: str) -> Iterator[httpx.Client]:
    if door == "native":
        with LiveServer(f"tests.apps.rate_limit:{name}", "--env", "production") as live:
            with httpx.Client(base_url=live.url, timeout=10) as c:
                yield c
    else:
        build = apps.build if name == "app" else apps.build_keyed
        with TestClient(build()) as c:
            yield c


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """The native scenarios, one blueprint each, with fresh budgets."""
    yield from _client(request.param, "app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def keyed(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """The ``key_func`` and per-user limits, run in Python."""
    yield from _client(request.param, "keyed")


def _assert_refused(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    assert body == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": DETAIL,
        "retry_after": retry_after,
    }
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"


def test_a_token_bucket_counts_down_then_refuses_with_a_problem(client):
    before = int(time.time())
    remaining = []
    for _ in range(3):
        response = client.get("/tb/ping")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        reset = int(response.headers["x-ratelimit-reset"])
        # A Unix timestamp: the bucket is whole again after the refills.
        assert before < reset <= int(time.time()) + 3 * 1000 + 1
        state = response.json()["state"]
        assert state == {"limit": 3, "remaining": remaining[-1], "reset": reset}
    assert remaining == [2, 1, 0]
    refused = client.get("/tb/ping")
    _assert_refused(refused, 3)
    # One token in 1000 s: the wait is whole seconds, up to 1000.
    assert 990 <= int(refused.headers["retry-after"]) <= 1000
    # The framework's own 404 below the limited prefix is limited too.
    _assert_refused(client.get("/tb/nowhere"), 3)


def test_exempt_paths_are_not_limited_and_carry_no_headers(client):
    for _ in range(5):
        response = client.get("/tb/health")
        assert response.status_code == 200
        assert "x-ratelimit-limit" not in response.headers
    # Paths outside every limited prefix are untouched too.
    assert "x-ratelimit-limit" not in client.get("/elsewhere").headers


def test_spoofed_forwarding_headers_from_an_untrusted_peer_change_nothing(client):
    for fake in ("1.1.1.1", "2.2.2.2"):
        response = client.get("/spoof/ping", headers={"x-forwarded-for": fake})
        assert response.status_code == 200
    for headers in (
        {"x-forwarded-for": "3.3.3.3"},
        {"x-real-ip": "4.4.4.4"},
        {"x-forwarded-for": "5.5.5.5, 6.6.6.6", "x-real-ip": "7.7.7.7"},
    ):
        _assert_refused(client.get("/spoof/ping", headers=headers), 2)


def test_a_trusted_proxy_s_forwarded_address_is_the_client(client):
    # The peer (127.0.0.1) is a trusted proxy: X-Forwarded-For names the client.
    for _ in range(2):
        assert client.get("/proxied/ping", headers={"x-forwarded-for": "1.1.1.1"}).is_success
    _assert_refused(client.get("/proxied/ping", headers={"x-forwarded-for": "1.1.1.1"}), 2)
    # Another client behind the proxy has a budget of its own...
    assert client.get("/proxied/ping", headers={"x-forwarded-for": "2.2.2.2"}).is_success
    # ...and so does one named by X-Real-IP.
    assert client.get("/proxied/ping", headers={"x-real-ip": "3.3.3.3"}).is_success
    # The exhausted client cannot escape by prepending a fake address: the
    # proxy appends the real one, and only the right-most untrusted counts.
    spoof = {"x-forwarded-for": "9.9.9.9, 1.1.1.1"}
    _assert_refused(client.get("/proxied/ping", headers=spoof), 2)


def test_a_header_key_limits_each_value_and_falls_back_to_the_address(client):
    assert client.get("/apikey/ping", headers={"x-api-key": "alpha"}).is_success
    _assert_refused(client.get("/apikey/ping", headers={"x-api-key": "alpha"}), 1)
    assert client.get("/apikey/ping", headers={"x-api-key": "beta"}).is_success
    assert client.get("/apikey/ping").is_success
    _assert_refused(client.get("/apikey/ping"), 1)


def test_a_sliding_window_allows_its_requests_then_refuses(client):
    for expected in (2, 1, 0):
        response = client.get("/sw/ping")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == str(expected)
        # The window's end: a day boundary.
        assert int(response.headers["x-ratelimit-reset"]) % 86400 == 0
    refused = client.get("/sw/ping")
    _assert_refused(refused, 3)
    assert int(refused.headers["retry-after"]) > 3600


def test_an_adaptive_limit_shrinks_when_the_handler_fails(client):
    for _ in range(10):
        failing = client.get("/adaptive/fail")
        assert failing.status_code == 500
        assert failing.headers["x-ratelimit-limit"] == "20"
    # Every response in the window was a 5xx: the limit is at its floor,
    # which the ten requests already spent.
    _assert_refused(client.get("/adaptive/ping"), 2)


def test_a_mounted_asgi_app_is_limited_too(client):
    first = client.get("/legacy/hello")
    assert (first.status_code, first.text) == (200, "from starlette")
    assert first.headers["x-ratelimit-remaining"] == "0"
    _assert_refused(client.get("/legacy/hello"), 1)


def test_a_key_func_limits_each_key_in_python(keyed):
    for _ in range(2):
        response = keyed.get("/tenant", headers={"x-tenant": "acme"})
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "2"
    assert response.json()["state"]["remaining"] == 0
    _assert_refused(keyed.get("/tenant", headers={"x-tenant": "acme"}), 2)
    assert keyed.get("/tenant", headers={"x-tenant": "globex"}).status_code == 200
    # No key: the client's address is the key.
    assert keyed.get("/tenant").status_code == 200
    assert keyed.get("/tenant").status_code == 200
    _assert_refused(keyed.get("/tenant"), 2)
    health = keyed.get("/health")
    assert health.status_code == 200 and "x-ratelimit-limit" not in health.headers


def test_key_by_user_limits_each_authenticated_user(keyed):
    assert keyed.get("/user", headers={"x-user": "alice"}).status_code == 200
    _assert_refused(keyed.get("/user", headers={"x-user": "alice"}), 1)
    assert keyed.get("/user", headers={"x-user": "bob"}).status_code == 200
    # Anonymous requests share their address's budget.
    assert keyed.get("/user").status_code == 200
    _assert_refused(keyed.get("/user"), 1)


def _connection_to(port: int) -> tuple[http.client.HTTPConnection, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/pid")
    response = connection.getresponse()
    pid = json.loads(response.read())["pid"]
    return connection, pid


def test_two_workers_share_one_budget():
    with LiveServer("tests.apps.rate_limit_workers:app", "--env", "production") as live:
        # Open fresh connections until two are served by different workers
        # (each keeps its worker, being kept alive).
        connections: dict[int, http.client.HTTPConnection] = {}
        for _ in range(200):
            connection, pid = _connection_to(live.port)
            if pid in connections:
                connection.close()
            else:
                connections[pid] = connection
            if len(connections) == 2:
                break
        assert len(connections) == 2, "the second worker never accepted a connection"
        served: dict[int, int] = dict.fromkeys(connections, 0)
        statuses = []
        for i in range(60):
            pid = list(connections)[i % 2]
            connections[pid].request("GET", "/limited")
            response = connections[pid].getresponse()
            body = response.read()
            statuses.append(response.status)
            if response.status == 200:
                assert json.loads(body)["pid"] == pid
                served[pid] += 1
        for connection in connections.values():
            connection.close()
        assert statuses.count(200) == 20, statuses
        assert statuses.count(429) == 40
        # Both workers spent the one budget: ten requests each.
        assert sorted(served.values()) == [10, 10], served


# -- configuration ----------------------------------------------------------


def test_exports():
    assert cello.RateLimitConfig is cello.middleware.RateLimitConfig
    assert cello.validate_rate_limit_config is validate_rate_limit_config
    assert issubclass(AdaptiveRateLimitConfig, RateLimitConfig)
    assert {"RateLimitConfig", "validate_rate_limit_config"} <= set(cello.__all__)
    assert {"RateLimitConfig", "AdaptiveRateLimitConfig"} <= set(cello.middleware.__all__)


def test_the_config_has_its_documented_defaults_and_settable_attributes():
    config = RateLimitConfig()
    assert (config.algorithm, config.capacity, config.refill_rate, config.window_secs) == (
        "token_bucket", 100, 10, 60,
    )  # fmt: skip
    assert (config.key_by, config.min_capacity, config.error_threshold) == ("ip", None, None)
    assert (config.key_func, config.exempt_paths, config.trusted_proxies) == (None, [], [])
    config.max_requests = 7
    assert config.capacity == 7
    config.window_secs = 5
    assert config.window_secs == 5


def test_builders_take_both_the_impl_and_the_docs_forms():
    bucket = RateLimitConfig.token_bucket(50, 5)
    assert (bucket.algorithm, bucket.capacity, bucket.refill_rate) == ("token_bucket", 50, 5)
    per_minute = RateLimitConfig.token_bucket(requests=120, window=60)
    assert (per_minute.capacity, per_minute.refill_rate) == (120, 2)
    window = RateLimitConfig.sliding_window(10, 30)
    assert (window.algorithm, window.max_requests, window.window_secs) == ("sliding_window", 10, 30)
    assert RateLimitConfig.sliding_window(requests=10, window=30).window_secs == 30
    impl = RateLimitConfig.adaptive(100, 10, 20, 0.2)
    assert (impl.algorithm, impl.min_capacity, impl.error_threshold) == ("adaptive", 20, 0.2)
    docs = RateLimitConfig.adaptive(base_requests=60, window=60, cpu_threshold=0.7, min_requests=5)
    assert isinstance(docs, AdaptiveRateLimitConfig)
    assert (docs.capacity, docs.refill_rate, docs.min_capacity) == (60, 1, 5)
    assert (docs.cpu_threshold, docs.memory_threshold, docs.latency_threshold) == (0.7, 0.9, 100)
    direct = AdaptiveRateLimitConfig(100, 10)
    assert (direct.capacity, direct.refill_rate, direct.min_capacity) == (100, 10, 10)
    extra = RateLimitConfig.token_bucket(5, 1, exempt_paths=["/health"], key_by="path")
    assert (extra.exempt_paths, extra.key_by) == (["/health"], "path")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RateLimitConfig(capacity=0), "capacity must be an integer > 0"),
        (RateLimitConfig.sliding_window(0, 10), "max_requests must be an integer > 0"),
        (RateLimitConfig.sliding_window(10, 0), "window_secs must be a number > 0"),
        (RateLimitConfig.sliding_window(10, -1), "window_secs must be a number > 0"),
        (RateLimitConfig(refill_rate=0), "refill_rate must be a number > 0"),
        (RateLimitConfig(capacity=True), "capacity must be an integer > 0"),
        (RateLimitConfig(capacity=10**10), "capacity must be at most 1000000000"),
        (RateLimitConfig(refill_rate=1e-9), "refill_rate must be at least 0.0001"),
        (RateLimitConfig.sliding_window(2_000_000, 10), "max_requests must be at most"),
        (RateLimitConfig(algorithm="leaky"), "Unknown rate limit algorithm"),
        (RateLimitConfig(key_by="cookie"), "key_by must be 'ip', 'path', 'user'"),
        (RateLimitConfig(key_by="header:bad name"), "key_by must be"),
        (RateLimitConfig(exempt_paths=["health"]), "exempt_paths takes paths starting with '/'"),
        (RateLimitConfig(trusted_proxies=["10.0.0.1/8"]), "trusted_proxies: '10.0.0.1/8'"),
        (RateLimitConfig(trusted_proxies=["proxy.local"]), "is not an IP address or network"),
        (RateLimitConfig(key_func="tenant"), "key_func must be callable"),
        (RateLimitConfig.adaptive(10, 1, 20), r"min_capacity \(20\) must not exceed capacity"),
        (RateLimitConfig.adaptive(10, 1, error_threshold=1.5), "error_threshold is a share"),
    ],
)
def test_bad_options_are_refused_by_name(config, message):
    with pytest.raises(ValueError, match=message):
        validate_rate_limit_config(config)
    with pytest.raises(ValueError, match=message):
        App().enable_rate_limit(config)


def test_enable_rate_limit_takes_a_config_or_options():
    app = App()
    app.enable_rate_limit(capacity=5, refill_rate=1)
    assert ("RateLimit", "") in app._core.layers()
    with pytest.raises(ValueError, match="Unknown rate limit algorithm"):
        app.enable_rate_limit(algorithm="fixed")
    with pytest.raises(ValueError, match="a config or options, not both"):
        app.enable_rate_limit(RateLimitConfig(), capacity=3)
    with pytest.raises(ValueError, match="takes a RateLimitConfig"):
        app.enable_rate_limit({"capacity": 3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="runs in Python"):
        app.use(RateLimitConfig(key_func=lambda r: "k"))


def test_a_key_func_returning_a_non_string_is_a_500_not_a_bypass():
    app = App()
    app.enable_rate_limit(RateLimitConfig.token_bucket(1, 0.001, key_func=lambda r: 42))

    @app.get("/")
    def index(request):
        return "ok"

    with TestClient(app) as client:
        failed = client.get("/")
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
