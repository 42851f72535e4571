"""Prometheus metrics (``app.enable_prometheus()``): the exposition parses
with the reference parser, series are labelled with route templates and stay
bounded, histograms agree with the counters, and two forked workers count
into one table that a scrape of either shows."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import cello
from cello import App
from cello.middleware import PrometheusConfig
from cello.testing import TestClient
from tests.live import LiveServer, door_client

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "tests.apps.metrics:app", "--env", "production")


def scrape(client: httpx.Client) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` from one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def series(method: str, path: str, status: int | str) -> tuple:
    return (("method", method), ("path", path), ("status", str(status)))


def value(samples: dict, name: str, labels: tuple, **extra: str) -> float:
    key = tuple(sorted(dict(labels, **extra).items()))
    return samples.get(name, {}).get(key, 0.0)


def total(samples: dict) -> float:
    return sum(samples.get("cello_http_requests_total", {}).values())


# -- the exposition -----------------------------------------------------------


def test_the_exposition_has_every_family_with_the_documented_types(client):
    client.get("/")
    response = client.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert families == {
        # The parser drops the counter's _total suffix from the family name.
        "cello_http_requests": "counter",
        "cello_http_request_duration_seconds": "histogram",
        "cello_http_request_size_bytes": "histogram",
        "cello_http_response_size_bytes": "histogram",
        "cello_http_requests_in_flight": "gauge",
        "cello_http_requests_in_progress": "gauge",
    }
    assert "# TYPE cello_http_requests_total counter" in response.text


def test_head_gets_the_headers_without_the_body(client):
    response = client.head("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.content == b""


def test_requests_are_labelled_with_the_route_template_not_the_path(client):
    before = scrape(client)
    for user in (1, 2, 3):
        assert client.get(f"/users/{user}").status_code == 200
    after = scrape(client)
    labels = series("GET", "/users/{id}", 200)
    counted = value(after, "cello_http_requests_total", labels) - value(
        before, "cello_http_requests_total", labels
    )
    assert counted == 3
    paths = {dict(k)["path"] for k in after["cello_http_requests_total"]}
    assert not any(p.startswith("/users/") and p != "/users/{id}" for p in paths), paths


def test_a_thousand_distinct_404s_share_one_series(client):
    client.get("/missing/first")
    before = scrape(client)
    for n in range(1000):
        assert client.get(f"/missing/{n}/x{n}").status_code == 404
    after = scrape(client)
    assert len(after["cello_http_requests_total"]) == len(before["cello_http_requests_total"])
    labels = series("GET", "<unmatched>", 404)
    assert (
        value(after, "cello_http_requests_total", labels)
        - value(before, "cello_http_requests_total", labels)
        == 1000
    )


def test_unknown_methods_share_one_label(client):
    before = scrape(client)
    for method in ("BREW", "PROPFIND", "WHEN"):
        client.request(method, "/")
    after = scrape(client)
    methods = {dict(k)["method"] for k in after["cello_http_requests_total"]}
    assert not methods & {"BREW", "PROPFIND", "WHEN"}
    labels = series("other", "<unmatched>", 405)
    assert (
        value(after, "cello_http_requests_total", labels)
        - value(before, "cello_http_requests_total", labels)
        == 3
    )


def test_the_endpoint_and_health_probes_are_not_measured(client):
    before = scrape(client)
    for path in ("/metrics", "/health", "/health/live", "/health/ready", "/liveness"):
        client.get(path)
    after = scrape(client)
    assert total(after) == total(before)
    paths = {dict(k)["path"] for k in after["cello_http_requests_total"]}
    assert "/metrics" not in paths


def test_histograms_are_cumulative_and_agree_with_the_counter(client):
    client.get("/")
    client.post("/echo", content=b"x" * 5000)
    samples = scrape(client)
    for name in (
        "cello_http_request_duration_seconds",
        "cello_http_request_size_bytes",
        "cello_http_response_size_bytes",
    ):
        for labels, requests in samples["cello_http_requests_total"].items():
            buckets = sorted(
                (float(dict(k)["le"]), v)
                for k, v in samples[f"{name}_bucket"].items()
                if tuple(i for i in k if i[0] != "le") == labels
            )
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (name, labels, buckets)
            assert buckets[-1][0] == float("inf")
            assert buckets[-1][1] == samples[f"{name}_count"][labels] == requests
    bounds = sorted(
        {float(dict(k)["le"]) for k in samples["cello_http_request_duration_seconds_bucket"]}
    )
    assert bounds == [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")]


def test_sizes_are_the_declared_request_body_and_the_sent_response_body(client):
    labels = series("POST", "/echo", 200)
    before = scrape(client)
    response = client.post("/echo", content=b"y" * 1234)
    assert len(response.content) == 1234
    after = scrape(client)

    def grew(name: str) -> float:
        return value(after, name, labels) - value(before, name, labels)

    assert grew("cello_http_request_size_bytes_sum") == 1234
    assert grew("cello_http_response_size_bytes_sum") == 1234
    assert grew("cello_http_request_size_bytes_count") == 1
    # 1234 bytes: above the 1000 bucket, inside the 10000 one.
    assert bucket_growth(before, after, "cello_http_request_size_bytes", labels, 1000) == 0
    assert bucket_growth(before, after, "cello_http_request_size_bytes", labels, 10000) == 1


def bucket_growth(before: dict, after: dict, name: str, labels: tuple, le: float) -> float:
    def bucket(samples: dict) -> float:
        for key, count in samples[f"{name}_bucket"].items():
            rest = tuple(i for i in key if i[0] != "le")
            if rest == labels and float(dict(key)["le"]) == le:
                return count
        return 0.0

    return bucket(after) - bucket(before)


def test_a_streamed_body_is_sized_as_sent(client):
    labels = series("GET", "/stream", 200)
    before = scrape(client)
    assert client.get("/stream").content == b"one;two;three;"
    after = scrape(client)
    name = "cello_http_response_size_bytes_sum"
    assert value(after, name, labels) - value(before, name, labels) == 14


def test_durations_cover_the_handler(client):
    labels = series("GET", "/slow", 200)
    before = scrape(client)
    client.get("/slow")
    after = scrape(client)
    name = "cello_http_request_duration_seconds"
    assert value(after, f"{name}_sum", labels) - value(before, f"{name}_sum", labels) >= 0.03
    # It slept 30 ms: not in the 25 ms bucket, in the +Inf one.
    assert bucket_growth(before, after, name, labels, 0.025) == 0
    assert bucket_growth(before, after, name, labels, float("inf")) == 1


def test_errors_and_mounted_apps_are_counted(client):
    before = scrape(client)
    assert client.get("/fails").status_code == 500
    assert client.get("/star/plain").text == "from starlette"
    after = scrape(client)
    for labels in (series("GET", "/fails", 500), series("GET", "/star/{*path}", 200)):
        name = "cello_http_requests_total"
        assert value(after, name, labels) - value(before, name, labels) == 1, labels


def test_the_endpoint_is_not_in_the_openapi_document(client):
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_a_request_in_flight_is_on_the_gauge(client):
    if isinstance(client, TestClient):
        pytest.skip("the in-process client sends one request at a time")
    waiting = threading.Thread(target=lambda: client.get("/wait"))
    waiting.start()
    try:
        for _ in range(200):
            gauge = scrape(client)["cello_http_requests_in_flight"][()]
            if gauge >= 1:
                break
        assert gauge == 1
        assert scrape(client)["cello_http_requests_in_progress"][()] == 1
    finally:
        client.get("/release")
        waiting.join(10)
    assert scrape(client)["cello_http_requests_in_flight"][()] == 0


# -- workers ----------------------------------------------------------------


def _connection(port: int) -> tuple[http.client.HTTPConnection, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/pid")
    response = connection.getresponse()
    return connection, json.loads(response.read())["pid"]


def test_two_workers_count_into_one_table_that_either_scrape_shows():
    with LiveServer("tests.apps.metrics_workers:app", "--env", "production") as live:
        # Fresh connections until two are served by different workers (a
        # kept-alive connection stays with its worker).
        connections: dict[int, http.client.HTTPConnection] = {}
        opened = 0
        for _ in range(200):
            connection, pid = _connection(live.port)
            opened += 1
            if pid in connections:
                connection.close()
            else:
                connections[pid] = connection
            if len(connections) == 2:
                break
        assert len(connections) == 2, "the second worker never accepted a connection"
        served: dict[int, int] = dict.fromkeys(connections, 0)
        for i in range(50):
            pid = list(connections)[i % 2]
            connections[pid].request("GET", f"/items/n{i}")
            response = connections[pid].getresponse()
            assert json.loads(response.read())["pid"] == pid
            served[pid] += 1
        assert sorted(served.values()) == [25, 25]
        # Scrape through each worker's connection: both see all 50, and
        # every /pid request of either worker.
        for pid, connection in connections.items():
            for _ in range(3):
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                text = response.read().decode()
                samples = {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                }
                items = series("GET", "/items/{name}", 200)
                pids = series("GET", "/pid", 200)
                assert samples[("cello_http_requests_total", items)] == 50, pid
                assert samples[("cello_http_requests_total", pids)] == opened
        for connection in connections.values():
            connection.close()


# -- configuration ------------------------------------------------------------


def test_names_take_the_namespace_and_subsystem_given():
    app = App()
    app.enable_prometheus("/stats", namespace="shop", subsystem="")

    @app.get("/")
    def index(request):
        return {}

    with TestClient(app) as client:
        client.get("/")
        text = client.get("/stats").text
        assert client.get("/metrics").status_code == 404
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "shop_requests" in names
    assert 'shop_requests_total{method="GET",path="/",status="200"} 1\n' in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"endpoint": "metrics"}, "must be a path starting with '/'"),
        ({"endpoint": ""}, "must be a path starting with '/'"),
        ({"namespace": "9lives"}, "namespace must be a valid metric name part"),
        ({"namespace": "my-app"}, "namespace must be a valid metric name part"),
        ({"subsystem": "http server"}, "subsystem must be a valid metric name part"),
        ({"subsystem": None}, "subsystem must be a valid metric name part"),
        ({"max_series": 3}, "max_series must be an int >= 16"),
        ({"skip_paths": ["health"]}, "skip_paths takes paths starting with '/'"),
    ],
)
def test_bad_settings_are_value_errors_naming_the_setting(args, message):
    app = App()
    with pytest.raises(ValueError, match=message):
        app.enable_prometheus(**args)
    assert ("Metrics", "") not in app._core.layers()


def test_a_second_call_is_a_runtime_error():
    app = App()
    app.enable_prometheus()
    with pytest.raises(RuntimeError, match="already"):
        app.enable_prometheus(endpoint="/other")


def test_skip_paths_replace_the_default_ones():
    app = App()
    app.enable_prometheus(skip_paths=["/internal"])

    @app.get("/internal/ping")
    def ping(request):
        return {}

    with TestClient(app) as client:
        client.get("/internal/ping")
        client.get("/health")
        text = client.get("/metrics").text
    assert "/internal" not in text
    assert 'path="<unmatched>",status="404"} 1\n' in text


def test_exports():
    assert cello.middleware.PrometheusConfig is PrometheusConfig
    assert "PrometheusConfig" in cello.middleware.__all__
    assert repr(PrometheusConfig()) == (
        "PrometheusConfig(endpoint='/metrics', namespace='cello', subsystem='http')"
    )
