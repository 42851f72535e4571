"""OpenTelemetry tracing: every request gets a SERVER span exported over
OTLP, a handler adds its own child span with the standard ``opentelemetry``
API, and a call to another service with ``cello.AsyncClient`` carries the
trace on in ``traceparent``.

Needs the extra: ``pip install 'cello[otel]'``. Start a collector or Jaeger
(``docker run -p 16686:16686 -p 4317:4317 -p 4318:4318 jaegertracing/jaeger``),
then run it with::

    python examples/telemetry.py               # on 127.0.0.1:8000
    OTLP_ENDPOINT=http://collector:4318 python examples/telemetry.py

and ``curl http://localhost:8000/orders/42``; the trace shows up in Jaeger's
UI (http://localhost:16686) under the service ``orders-example``.
``OTLP_ENDPOINT`` (default ``http://localhost:4317``, OTLP/gRPC) picks the
receiver; port 4318 or a ``/v1/traces`` path means OTLP/HTTP.
"""

import os

from opentelemetry import trace

from cello import App, AsyncClient, OpenTelemetryConfig

app = App()
app.enable_telemetry(
    OpenTelemetryConfig(
        "orders-example",
        service_version="1.0.0",
        otlp_endpoint=os.environ.get("OTLP_ENDPOINT", "http://localhost:4317"),
        # Probes and metrics scrapes are not worth a trace.
        excluded_paths=["/health"],
    )
)

tracer = trace.get_tracer(__name__)


@app.get("/orders/{order_id}")
async def order(request):
    order_id = request.params["order_id"]
    # A child of the request's span, exported with it.
    with tracer.start_as_current_span("load-order") as span:
        span.set_attribute("order.id", order_id)
        order = {"id": order_id, "items": 3}
    return order


@app.get("/checkout/{order_id}")
async def checkout(request):
    # The outgoing call gets a CLIENT span, and the next service's span
    # becomes its child through the traceparent header Cello adds.
    base = os.environ.get("ORDERS_URL", f"{request.scheme}://{request.host}")
    async with AsyncClient(timeout=5.0) as client:
        answer = await client.get(f"{base}/orders/{request.params['order_id']}")
    return {"order": answer.json(), "traced": True}


@app.get("/health")
def health():
    return {"status": "ok"}


if __name__ == "__main__":
    app.run()
