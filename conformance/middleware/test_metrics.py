"""Prometheus metrics through every door: after the same requests, each door's
scrape has the same headers, the same families and the same counts and sizes
for the same (method, route template, status) series. Durations differ from
run to run, so only their counts are compared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conformance.doors import Door, started_doors

APP = "conformance.middleware.metrics_app:app"

REQUESTS = [
    ("GET", "/items/1", None),
    ("GET", "/items/2", None),
    ("GET", "/items/x", None),  # the int constraint fails: 404, unmatched
    ("POST", "/items", b'{"name": "a"}'),
    ("DELETE", "/items", None),  # 405, unmatched
    ("GET", "/feed", None),
    ("GET", "/star/plain", None),
    ("GET", "/health/live", None),  # not measured
]


@pytest.fixture(scope="module")
def scrapes() -> Iterator[dict[str, tuple]]:
    with started_doors(APP) as doors:
        yield {name: _scrape_after_requests(door) for name, door in doors.items()}


def _scrape_after_requests(door: Door) -> tuple:
    for method, path, body in REQUESTS:
        headers = [("content-type", "application/json")] if body else []
        door.send(method, path, headers, body)
    observed = door.send("GET", "/metrics", [], None)
    headers = tuple(h for h in observed.headers if h[0] != "content-length")
    samples = {}
    families = {}
    for family in text_string_to_metric_families(observed.body.decode()):
        families[family.name] = family.type
        for sample in family.samples:
            if sample.name.startswith("cello_http_request_duration_seconds_") and not (
                sample.name.endswith("_count")
            ):
                continue  # timings vary; their count must not
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return observed.status, headers, families, samples


def test_the_scrape_is_the_expected_one(scrapes):
    status, headers, families, samples = scrapes["native"]
    assert status == 200
    assert ("content-type", "text/plain; version=0.0.4; charset=utf-8") in headers
    assert ("cache-control", "no-store") in headers
    assert set(families) == {
        "cello_http_requests",
        "cello_http_request_duration_seconds",
        "cello_http_request_size_bytes",
        "cello_http_response_size_bytes",
        "cello_http_requests_in_flight",
        "cello_http_requests_in_progress",
    }
    counts = {
        tuple(v for _, v in labels): value
        for (name, labels), value in samples.items()
        if name == "cello_http_requests_total"
    }
    assert counts == {
        ("GET", "/items/{item_id}", "200"): 2,
        ("GET", "<unmatched>", "404"): 1,
        ("POST", "/items", "201"): 1,
        ("DELETE", "<unmatched>", "405"): 1,
        ("GET", "/feed", "200"): 1,
        ("GET", "/star/{*path}", "200"): 1,
    }
    feed = (("method", "GET"), ("path", "/feed"), ("status", "200"))
    assert samples[("cello_http_response_size_bytes_sum", feed)] == 5
    created = (("method", "POST"), ("path", "/items"), ("status", "201"))
    assert samples[("cello_http_request_size_bytes_sum", created)] == 13


@pytest.mark.parametrize("door", ["uvicorn", "asgi"])
def test_every_door_counts_what_the_native_server_counts(scrapes, door):
    assert scrapes[door] == scrapes["native"]
