"""OpenTelemetry tracing (app.enable_telemetry): the request's SERVER span
with its parent from ``traceparent``, its attributes and error status; a
child span made in the handler with the standard API; excluded paths,
sampling and export switches; ``AsyncClient`` carrying the trace on; and
export over OTLP/gRPC and OTLP/HTTP to real receivers, in door 1 (a live
native server, one or two worker processes) and door 2 (ASGI)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cello import App, OpenTelemetryConfig
from cello.telemetry import protocol_for, signal_url
from tests.apps.telemetry import make_app
from tests.live import LiveServer
from tests.otlp import GrpcReceiver, HttpReceiver, Received, Span
from tests.otlp import attributes_of as attribute_dict

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def sampled(traceparent: str) -> bool:
    """The sampled bit of a traceparent's flags (newer SDKs also set the
    random-trace-id bit, 02)."""
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


def only(spans: list[Span], name: str, kind: str = "SERVER") -> Span:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


# -- the configuration -------------------------------------------------------


def test_config_defaults_and_documented_options():
    config = OpenTelemetryConfig("orders")
    assert (config.service_name, config.service_version) == ("orders", "0.1.0")
    assert config.otlp_endpoint is None
    assert (config.sampling_rate, config.export_traces, config.export_metrics) == (1.0, True, True)
    assert (config.propagation, config.export_timeout_ms, config.batch_size) == ("w3c", 10000, 512)
    positional = OpenTelemetryConfig("a", "1.2", "http://c:4317", 0.5, False, False, ["/x"])
    assert positional.sampling_rate == 0.5 and positional.excluded_paths == ["/x"]
    assert not positional.export_traces and not positional.export_metrics


@pytest.mark.parametrize(
    "options",
    [
        {"sampling_rate": 1.5},
        {"sampling_rate": -0.1},
        {"sampling_rate": "1"},
        {"propagation": "b3"},
        {"otlp_endpoint": "collector:4317"},
        {"otlp_endpoint": "ftp://collector"},
        {"batch_size": 0},
        {"export_timeout_ms": -1},
        {"excluded_paths": "/health"},
        {"excluded_paths": ["health"]},
        {"protocol": "udp"},
        {"service_name": ""},
    ],
)
def test_config_refuses_bad_values(options):
    with pytest.raises(ValueError):
        OpenTelemetryConfig(**{"service_name": "svc", **options})


def test_protocol_follows_the_endpoint_unless_given(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    assert protocol_for("http://localhost:4317") == "grpc"
    assert protocol_for("http://collector") == "grpc"
    assert protocol_for("http://localhost:4318") == "http/protobuf"
    assert protocol_for("https://otel.example.com/v1/traces") == "http/protobuf"
    assert OpenTelemetryConfig("s", protocol="http").resolved_protocol() == "http/protobuf"
    assert OpenTelemetryConfig("s", otlp_endpoint="http://h:4318", protocol="grpc") \
        .resolved_protocol() == "grpc"  # fmt: skip
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert OpenTelemetryConfig("s").resolved_protocol() == "http/protobuf"
    assert signal_url("http://h:4318", "traces") == "http://h:4318/v1/traces"
    assert signal_url("http://h/otlp/v1/traces", "metrics") == "http://h/otlp/v1/metrics"


def test_endpoint_comes_from_config_then_environment(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert OpenTelemetryConfig("s").endpoint() == "http://localhost:4317"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")
    assert OpenTelemetryConfig("s").endpoint() == "http://env:4317"
    assert OpenTelemetryConfig("s", otlp_endpoint="http://mine:4317").endpoint() == (
        "http://mine:4317"
    )


def test_excluded_paths_match_exactly_and_below_or_as_a_prefix():
    config = OpenTelemetryConfig("s", excluded_paths=["/health", "/static*", "/metrics/"])
    assert config.excludes("/health") and config.excludes("/health/live")
    assert not config.excludes("/healthz") and not config.excludes("/")
    assert config.excludes("/static") and config.excludes("/staticfiles/a.css")
    assert config.excludes("/metrics") and config.excludes("/metrics/x")
    assert not OpenTelemetryConfig("s").excludes("/health")


def test_enable_telemetry_without_the_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cello._tracing", None)
    with pytest.raises(ImportError, match=r"cello\[otel\]"):
        App().enable_telemetry(OpenTelemetryConfig("s"))


def test_enable_telemetry_checks_its_arguments():
    app = App()
    with pytest.raises(ValueError, match="OpenTelemetryConfig"):
        app.enable_telemetry({"service_name": "s"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        app.enable_telemetry(OpenTelemetryConfig("s"), sampling_rate=0.5)
    app.enable_telemetry(service_name="kw", otlp_endpoint="http://127.0.0.1:9")
    assert app.telemetry.config.service_name == "kw"
    with pytest.raises(RuntimeError, match="already enabled"):
        app.enable_telemetry()


# -- door 2: the app under an ASGI server ------------------------------------


def asgi_requests(app: App, *requests: tuple[str, dict[str, str]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return [await c.get(path, headers=headers) for path, headers in requests]

    responses = asyncio.run(go())
    assert app.telemetry.force_flush(10000)
    return responses


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def traced_app(receiver: HttpReceiver, **options: Any) -> App:
    return make_app(receiver.endpoint, protocol="http/protobuf", **options)


def test_asgi_span_is_the_child_of_the_incoming_traceparent(http_receiver):
    app = traced_app(http_receiver, export_metrics=False)
    (response,) = asgi_requests(
        app, ("/users/42?full=1", {"traceparent": TRACEPARENT, "user-agent": "probe/1"})
    )
    assert response.status_code == 200
    spans = http_receiver.received.wait_for_spans(2)
    server = only(spans, "GET /users/{id}")
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert server.status == "UNSET"
    assert server.attributes == {
        "http.request.method": "GET",
        "url.path": "/users/42",
        "url.query": "full=1",
        "url.scheme": "http",
        "http.route": "/users/{id}",
        "server.address": "testserver",
        "client.address": "10.1.2.3",
        "network.peer.address": "10.1.2.3",
        "network.peer.port": 5555,
        "network.protocol.version": "1.1",
        "user_agent.original": "probe/1",
        "http.response.status_code": 200,
    }
    assert server.resource["service.name"] == "telemetry-test"
    assert server.resource["service.version"] == "2.3.4"
    # The handler's span, made with opentelemetry.trace.get_tracer(), is its child,
    # and propagate.inject() inside it names it.
    work = only(spans, "work", kind="INTERNAL")
    assert (work.trace_id, work.parent_span_id) == (TRACE_ID, server.span_id)
    assert work.attributes == {"work.item": "42"}
    body = response.json()
    assert body["injected"] == f"00-{TRACE_ID}-{work.span_id}-01"
    assert (body["trace_id"], body["span_id"]) == (TRACE_ID, server.span_id)


def test_asgi_without_or_with_a_malformed_traceparent_starts_a_trace(http_receiver):
    app = traced_app(http_receiver, export_metrics=False)
    asgi_requests(
        app,
        ("/sync/a", {}),
        ("/sync/b", {"traceparent": "00-zzzz-00f067aa0ba902b7-01"}),
        ("/sync/c", {"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"}),
    )
    spans = [s for s in http_receiver.received.wait_for_spans(6) if s.kind == "SERVER"]
    assert len(spans) == 3
    assert all(s.name == "GET /sync/{name}" for s in spans)
    assert all(s.parent_span_id == "" for s in spans)
    assert len({s.trace_id for s in spans}) == 3
    assert TRACE_ID not in {s.trace_id for s in spans}


def test_asgi_500_from_an_exception_is_an_error_with_the_exception(http_receiver):
    app = traced_app(http_receiver, export_metrics=False)
    boom, unavailable, missing = asgi_requests(
        app, ("/boom", {}), ("/unavailable", {}), ("/nowhere", {})
    )
    assert (boom.status_code, unavailable.status_code, missing.status_code) == (500, 503, 404)
    spans = http_receiver.received.wait_for_spans(3)
    failed = only(spans, "GET /boom")
    assert failed.status == "ERROR"
    assert failed.attributes["error.type"] == "RuntimeError"
    assert failed.attributes["http.response.status_code"] == 500
    (event,) = failed.events
    assert event[0] == "exception"
    assert event[1]["exception.type"] == "RuntimeError"
    assert event[1]["exception.message"] == "kaboom"
    down = only(spans, "GET /unavailable")
    assert (down.status, down.attributes["error.type"], down.events) == ("ERROR", "503", [])
    # No route: the span is named by the method alone, without http.route;
    # a 4xx is not a server error.
    nowhere = only(spans, "GET")
    assert nowhere.status == "UNSET" and "http.route" not in nowhere.attributes
    assert nowhere.attributes["http.response.status_code"] == 404


def test_asgi_excluded_paths_have_no_span(http_receiver):
    app = traced_app(http_receiver, export_metrics=False)
    live, user = asgi_requests(app, ("/health/live", {}), ("/users/1", {}))
    assert live.status_code == user.status_code == 200
    spans = http_receiver.received.wait_for_spans(2)
    assert {s.name for s in spans} == {"GET /users/{id}", "work"}


def test_asgi_sampling_zero_exports_nothing_but_follows_a_sampled_parent(http_receiver):
    app = traced_app(http_receiver, export_metrics=False, sampling_rate=0.0)
    unsampled, other = asgi_requests(
        app, ("/users/1", {}), ("/users/2", {"traceparent": TRACEPARENT})
    )
    # The unsampled request still has a trace context to pass on, marked unsampled.
    assert not sampled(unsampled.json()["injected"])
    assert sampled(other.json()["injected"])
    spans = http_receiver.received.wait_for_spans(2)
    assert {s.trace_id for s in spans} == {TRACE_ID}
    assert {s.name for s in spans} == {"GET /users/{id}", "work"}


def test_asgi_export_traces_false_exports_no_span(http_receiver):
    app = traced_app(http_receiver, export_metrics=False, export_traces=False)
    (response,) = asgi_requests(app, ("/users/1", {"traceparent": TRACEPARENT}))
    # Tracing itself still runs: the trace context goes on.
    assert response.json()["trace_id"] == TRACE_ID
    assert http_receiver.received.spans == [] and http_receiver.received.paths == []


def request_counts(received: Received) -> dict[tuple[str, int], int]:
    """(route, status) -> requests, from the exported duration histograms
    (cumulative: the last export holds the total)."""
    counts: dict[tuple[str, int], int] = {}
    for name, _, metric in received.metrics:
        if name != "http.server.request.duration":
            continue
        assert metric.unit == "s"
        for point in metric.histogram.data_points:
            attributes = attribute_dict(point.attributes)
            key = (attributes["http.route"], attributes["http.response.status_code"])
            counts[key] = max(counts.get(key, 0), point.count)
    return counts


def test_asgi_request_metrics_are_exported(http_receiver):
    app = traced_app(http_receiver)
    asgi_requests(app, ("/users/1", {}), ("/users/2", {}), ("/boom", {}))
    app.telemetry.shutdown()
    assert "/v1/metrics" in http_receiver.received.paths
    counts = request_counts(http_receiver.received)
    assert counts[("/users/{id}", 200)] == 2
    assert counts[("/boom", 500)] == 1


# -- door 1: the native server, exporting from its own process ---------------


def live(receiver: Any, *args: str, **env: str) -> LiveServer:
    return LiveServer(
        "tests.apps.telemetry:app",
        "--no-logs",
        *args,
        env={"OTLP_TEST_ENDPOINT": receiver.endpoint, **env},
    )


def test_native_spans_reach_a_grpc_receiver():
    with GrpcReceiver() as receiver:
        with live(receiver, OTEL_BSP_SCHEDULE_DELAY="50") as server:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                user = client.get("/users/7", headers={"traceparent": TRACEPARENT})
                sync = client.get("/sync/x")
                boom = client.get("/boom")
                health = client.get("/health/live")
            spans = receiver.received.wait_for_spans(5)
            assert server.stop() == 0
        assert (user.status_code, sync.status_code, boom.status_code) == (200, 200, 500)
        assert health.status_code == 200
        spans = receiver.received.spans
        server_span = only(spans, "GET /users/{id}")
        assert (server_span.trace_id, server_span.parent_span_id) == (TRACE_ID, PARENT_ID)
        attributes = server_span.attributes
        assert attributes["http.route"] == "/users/{id}"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == server.port
        assert attributes["client.address"] == "127.0.0.1"
        assert attributes["network.protocol.version"] == "1.1"
        assert attributes["http.response.status_code"] == 200
        work = [s for s in spans if s.name == "work"]
        assert len(work) == 2
        assert {w.parent_span_id for w in work} >= {server_span.span_id}
        sync_span = only(spans, "GET /sync/{name}")
        assert any(w.parent_span_id == sync_span.span_id for w in work)
        assert user.json()["injected"] == f"00-{TRACE_ID}-{work[0].span_id}-01" or (
            user.json()["injected"] == f"00-{TRACE_ID}-{work[1].span_id}-01"
        )
        failed = only(spans, "GET /boom")
        assert failed.status == "ERROR" and failed.events[0][1]["exception.type"] == "RuntimeError"
        assert not [s for s in spans if s.attributes.get("url.path") == "/health/live"]


def test_native_http_export_is_flushed_on_graceful_shutdown():
    with HttpReceiver() as receiver:
        # The default batch delay (5 s) is longer than the test: only the
        # flush of the graceful stop can deliver the span now.
        receiver.endpoint += "/v1/traces"
        with live(receiver) as server:
            response = httpx.get(f"{server.url}/users/9", timeout=10)
            assert response.status_code == 200
            assert receiver.received.spans == []
            assert server.stop() == 0
        spans = receiver.received.spans
        assert {s.name for s in spans} == {"GET /users/{id}", "work"}
        assert "/v1/metrics" in receiver.received.paths


def test_native_workers_each_export_their_spans():
    with GrpcReceiver() as receiver:
        with live(receiver, "--workers", "2", OTEL_BSP_SCHEDULE_DELAY="50") as server:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for n in range(6):
                    answer = client.get(f"/sync/{n}", headers={"connection": "close"})
                    assert answer.status_code == 200
            assert server.stop() == 0
        spans = [s for s in receiver.received.spans if s.kind == "SERVER"]
        assert sorted(s.attributes["url.path"] for s in spans) == [f"/sync/{n}" for n in range(6)]


def test_native_sampling_zero_exports_nothing():
    with GrpcReceiver() as receiver:
        with live(receiver, OTLP_TEST_SAMPLING="0") as server:
            response = httpx.get(f"{server.url}/users/1", timeout=10)
            assert not sampled(response.json()["injected"])
            assert server.stop() == 0
        assert receiver.received.spans == []


def test_async_client_carries_the_trace_to_the_next_server():
    with GrpcReceiver() as receiver:
        env = {"OTEL_BSP_SCHEDULE_DELAY": "50"}
        with live(receiver, **env) as upstream, live(receiver, **env) as front:
            response = httpx.get(
                f"{front.url}/call",
                params={"url": f"{upstream.url}/echo-trace"},
                headers={"traceparent": TRACEPARENT},
                timeout=10,
            )
            assert response.status_code == 200
            assert front.stop() == 0 and upstream.stop() == 0
        spans = receiver.received.spans
        front_span = only(spans, "GET /call")
        client_span = only(spans, "GET", kind="CLIENT")
        upstream_span = only(spans, "GET /echo-trace")
        assert {front_span.trace_id, client_span.trace_id, upstream_span.trace_id} == {TRACE_ID}
        assert front_span.parent_span_id == PARENT_ID
        assert client_span.parent_span_id == front_span.span_id
        assert upstream_span.parent_span_id == client_span.span_id
        assert client_span.attributes["http.response.status_code"] == 200
        assert client_span.attributes["server.port"] == upstream.port
        echoed = response.json()["upstream"]["traceparent"]
        assert echoed == f"00-{TRACE_ID}-{client_span.span_id}-01"


def test_request_connection_attributes_in_both_doors():
    """The span's network attributes come from ``request.http_version``,
    ``request.client`` and ``request.server``, public in every door."""
    with GrpcReceiver() as receiver:
        app = make_app(receiver.endpoint, export_metrics=False, export_traces=False)
        (asgi,) = asgi_requests(app, ("/conn", {}))
        assert asgi.json() == {
            "http_version": "1.1",
            "client": ["10.1.2.3", 5555],
            # httpx's scope names the server "testserver", not an address:
            # only addresses are kept, so there is none.
            "server": None,
        }
        with live(receiver) as server, httpx.Client(base_url=server.url, timeout=10) as c:
            native = c.get("/conn").json()
        assert native["http_version"] == "1.1"
        assert native["client"][0] == "127.0.0.1" and native["client"][1] > 0
        assert native["server"] == ["127.0.0.1", server.port]


def test_asgi_handled_exceptions_and_failing_middleware(http_receiver):
    app = traced_app(http_receiver, export_metrics=False)

    @app.exception_handler(KeyError)
    def missing_key(request, exc):
        return {"missing": str(exc)}, 404

    @app.get("/lookup")
    def lookup(request):
        raise KeyError("sku")

    @app.middleware("http")
    async def strict(request, call_next):
        if request.path == "/users/0":
            raise ValueError("no user zero")
        return await call_next(request)

    handled, failed = asgi_requests(app, ("/lookup", {}), ("/users/0", {}))
    assert (handled.status_code, failed.status_code) == (404, 500)
    spans = http_receiver.received.wait_for_spans(2)
    # An exception an exception handler answered with a 4xx is no error.
    lookup_span = only(spans, "GET /lookup")
    assert (lookup_span.status, lookup_span.events) == ("UNSET", [])
    # One raised by a Python middleware is recorded on the request's span,
    # which is outside every middleware.
    user_span = only(spans, "GET /users/{id}")
    assert user_span.status == "ERROR"
    assert user_span.attributes["error.type"] == "ValueError"
    assert user_span.events[0][1]["exception.message"] == "no user zero"
