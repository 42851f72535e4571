"""An app with telemetry enabled, for tests/test_telemetry.py.

``make_app(endpoint, **options)`` builds one; the module's ``app`` reads
its endpoint and options from the environment (``OTLP_TEST_ENDPOINT``,
``OTLP_TEST_PROTOCOL``, ``OTLP_TEST_SAMPLING``), for the live server.

- ``GET /users/{id}`` (async) opens a child span with the standard API and
  returns the ``traceparent`` that ``opentelemetry.propagate.inject`` gives;
- ``GET /sync/{name}`` is the same for a sync handler;
- ``GET /boom`` raises, ``GET /unavailable`` answers 503 itself;
- ``GET /health/live`` is excluded from tracing;
- ``GET /call?url=...`` calls ``url`` with ``cello.AsyncClient``;
- ``GET /conn`` returns ``request.http_version``, ``client`` and ``server``;
- ``GET /echo-trace`` returns the ``traceparent`` it received.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import propagate, trace

from cello import App, AsyncClient, OpenTelemetryConfig, Response

tracer = trace.get_tracer(__name__)


def _work(name: str) -> dict[str, Any]:
    with tracer.start_as_current_span("work") as span:
        span.set_attribute("work.item", name)
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    current = trace.get_current_span().get_span_context()
    return {
        "name": name,
        "injected": carrier.get("traceparent"),
        "trace_id": format(current.trace_id, "032x"),
        "span_id": format(current.span_id, "016x"),
    }


def make_app(endpoint: str, **options: Any) -> App:
    app = App()
    app.enable_telemetry(
        OpenTelemetryConfig(
            "telemetry-test",
            "2.3.4",
            otlp_endpoint=endpoint,
            excluded_paths=["/health"],
            export_timeout_ms=5000,
            **options,
        )
    )

    @app.get("/users/{id}")
    async def user(request):
        return _work(request.params["id"])

    @app.get("/sync/{name}")
    def sync(request):
        return _work(request.params["name"])

    @app.get("/boom")
    async def boom(request):
        raise RuntimeError("kaboom")

    @app.get("/unavailable")
    def unavailable(request):
        return Response.json({"down": True}, status=503)

    @app.get("/health/live")
    def live(request):
        return {"status": "ok"}

    @app.get("/call")
    async def call(request):
        async with AsyncClient(timeout=10) as client:
            answer = await client.get(request.query["url"])
        return {"status": answer.status, "upstream": answer.json()}

    @app.get("/conn")
    def conn(request):
        return {
            "http_version": request.http_version,
            "client": request.client,
            "server": request.server,
        }

    @app.get("/echo-trace")
    def echo_trace(request):
        return {"traceparent": request.headers.get("traceparent")}

    return app


def _from_env() -> App:
    options: dict[str, Any] = {}
    if os.environ.get("OTLP_TEST_PROTOCOL"):
        options["protocol"] = os.environ["OTLP_TEST_PROTOCOL"]
    if os.environ.get("OTLP_TEST_SAMPLING"):
        options["sampling_rate"] = float(os.environ["OTLP_TEST_SAMPLING"])
    return make_app(os.environ.get("OTLP_TEST_ENDPOINT", "http://127.0.0.1:4317"), **options)


app = _from_env()
