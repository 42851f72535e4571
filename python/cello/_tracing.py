"""The OpenTelemetry SDK side of ``app.enable_telemetry()``: providers and
OTLP exporters made lazily in each worker process, the SERVER span around
every request, and the CLIENT span and ``traceparent`` of ``AsyncClient``.

Imported only when telemetry is enabled: importing it needs the SDK.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from cello import _support, client
from cello.telemetry import OpenTelemetryConfig, signal_url

__all__ = ["Tracing"]

log = logging.getLogger("cello.telemetry")

_INSTRUMENTATION = "cello"
_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
# Advised by the HTTP semantic conventions for http.server.request.duration.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_PROPAGATOR = TraceContextTextMapPropagator()


class _Handled:
    """What the pipeline reports about the request the span covers: the
    exception that became its 500, if any."""

    __slots__ = ("exception",)

    def __init__(self) -> None:
        self.exception: BaseException | None = None


# Set around each traced request; copied into its handler's Task or context.
_CURRENT: contextvars.ContextVar[_Handled | None] = contextvars.ContextVar(
    "cello_telemetry_request", default=None
)


def _note_exception(exc: BaseException) -> None:
    handled = _CURRENT.get()
    if handled is not None and handled.exception is None:
        handled.exception = exc


class _Exporters:
    """The OTLP exporters of one protocol (imported when chosen, so only
    that one's package must be installed)."""

    def __init__(self, config: OpenTelemetryConfig) -> None:
        self.protocol = config.resolved_protocol()
        self.endpoint = config.endpoint()
        self.timeout = config.export_timeout_ms / 1000
        package = "grpc" if self.protocol == "grpc" else "http"
        base = f"opentelemetry.exporter.otlp.proto.{package}"
        spans = importlib.import_module(f"{base}.trace_exporter")
        metrics = importlib.import_module(f"{base}.metric_exporter")
        self._spans = spans.OTLPSpanExporter
        self._metrics = metrics.OTLPMetricExporter

    def _options(self, signal: str) -> dict[str, Any]:
        if self.protocol == "grpc":
            parts = urlsplit(self.endpoint)
            return {
                "endpoint": f"{parts.hostname}:{parts.port or 4317}",
                "insecure": parts.scheme != "https",
                "timeout": self.timeout,
            }
        return {"endpoint": signal_url(self.endpoint, signal), "timeout": self.timeout}

    def spans(self) -> Any:
        return self._spans(**self._options("traces"))

    def metrics(self) -> Any:
        return self._metrics(**self._options("metrics"))


class _Providers:
    """One process's tracer and meter providers. Made on first use, so a
    server's worker processes each make their own after the fork (the
    batch processor's thread does not survive one)."""

    def __init__(self, config: OpenTelemetryConfig, exporters: _Exporters) -> None:
        self.pid = os.getpid()
        resource = Resource.create(
            {"service.name": config.service_name, "service.version": config.service_version}
        )
        sampler = ParentBased(TraceIdRatioBased(config.sampling_rate))
        self.tracer_provider = TracerProvider(
            resource=resource, sampler=sampler, shutdown_on_exit=False
        )
        if config.export_traces:
            self.tracer_provider.add_span_processor(
                BatchSpanProcessor(
                    exporters.spans(),
                    max_queue_size=max(2048, config.batch_size),
                    max_export_batch_size=config.batch_size,
                    export_timeout_millis=config.export_timeout_ms,
                )
            )
        self.tracer = self.tracer_provider.get_tracer(_INSTRUMENTATION)
        self.meter_provider: Any = None
        self.duration: Any = None
        self.active: Any = None
        if config.export_metrics:
            self._start_metrics(resource, exporters, config)

    def _start_metrics(
        self, resource: Resource, exporters: _Exporters, config: OpenTelemetryConfig
    ) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(
            exporters.metrics(), export_timeout_millis=config.export_timeout_ms
        )
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[reader], shutdown_on_exit=False
        )
        meter = self.meter_provider.get_meter(_INSTRUMENTATION)
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.active = meter.create_up_down_counter(
            "http.server.active_requests",
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


class Tracing:
    """The telemetry of one app: wraps each request in a SERVER span."""

    def __init__(self, config: OpenTelemetryConfig) -> None:
        self.config = config
        self.exporters = _Exporters(config)
        self._providers: _Providers | None = None
        _install_globals()

    def providers(self) -> _Providers:
        providers = self._providers
        if providers is None or providers.pid != os.getpid():
            providers = self._providers = _Providers(self.config, self.exporters)
        _ActiveProvider.current = providers.tracer_provider
        return providers

    def shutdown(self) -> None:
        """Exports what is pending and stops the exporters (graceful shutdown)."""
        providers, self._providers = self._providers, None
        if providers is not None and providers.pid == os.getpid():
            providers.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Exports every finished span now; False if that timed out."""
        providers = self._providers
        if providers is None:
            return True
        done = providers.tracer_provider.force_flush(timeout_millis)
        if providers.meter_provider is not None:
            done = providers.meter_provider.force_flush(timeout_millis) and done
        return bool(done)

    async def around(
        self, request: Any, route: str | None, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Runs ``call()`` (the rest of the request) inside the request's span."""
        if self.config.excludes(request.path):
            return await call()
        providers = self.providers()
        method = request.method
        attributes = _request_attributes(request, method, route)
        parent = _PROPAGATOR.extract(request.headers)
        span = providers.tracer.start_span(
            f"{method} {route}" if route else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        handled = _Handled()
        handled_token = _CURRENT.set(handled)
        metric_attributes: dict[str, Any] = {
            k: attributes[k]
            for k in ("http.request.method", "url.scheme", "http.route")
            if k in attributes
        }
        if providers.active is not None:
            providers.active.add(1, metric_attributes)
        started = time.perf_counter()
        status: int | None = None
        error_type: str | None = None
        try:
            response = await call()
            status = int(response.status)
            span.set_attribute("http.response.status_code", status)
            if handled.exception is not None:
                span.record_exception(handled.exception)
                error_type = type(handled.exception).__qualname__
            elif status >= 500:
                error_type = str(status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, error_type))
            return response
        except BaseException as exc:
            error_type = type(exc).__qualname__
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
            raise
        finally:
            if error_type is not None:
                span.set_attribute("error.type", error_type)
            _CURRENT.reset(handled_token)
            otel_context.detach(token)
            span.end()
            if providers.duration is not None:
                measured = dict(metric_attributes)
                measured["network.protocol.version"] = attributes["network.protocol.version"]
                if status is not None:
                    measured["http.response.status_code"] = status
                if error_type is not None:
                    measured["error.type"] = error_type
                providers.duration.record(time.perf_counter() - started, measured)
                providers.active.add(-1, metric_attributes)


def _request_attributes(request: Any, method: str, route: str | None) -> dict[str, Any]:
    """The HTTP server span attributes of the OpenTelemetry semantic conventions."""
    attributes: dict[str, Any] = {}
    if method in _METHODS:
        attributes["http.request.method"] = method
    else:
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method
    attributes["url.path"] = request.path
    if request.query_string:
        attributes["url.query"] = request.query_string
    attributes["url.scheme"] = request.scheme
    if route:
        attributes["http.route"] = route
    host = str(request.host or "")
    address, port = _split_host(host)
    server = request.server
    if not address and server is not None:
        address, port = server[0], server[1]
    if address:
        attributes["server.address"] = address
    if port is None and server is not None:
        port = server[1]
    if port is not None:
        attributes["server.port"] = port
    client_ip = request.client_ip
    if client_ip:
        attributes["client.address"] = str(client_ip)
    peer = request.client
    if peer is not None:
        attributes["network.peer.address"] = peer[0]
        attributes["network.peer.port"] = peer[1]
    attributes["network.protocol.version"] = request.http_version
    agent = request.headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    return attributes


def _split_host(host: str) -> tuple[str, int | None]:
    """``Host`` as (address, port): ``example.com:8080``, ``[::1]:80``."""
    if not host:
        return "", None
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return address, int(port) if port.isdigit() else None


# -- the global OpenTelemetry API ---------------------------------------------


class _ActiveTracer(trace.Tracer):
    """A tracer of the global provider: each span goes to the provider of
    the app serving now, so ``trace.get_tracer(__name__)`` at import time
    works however late (or how many times, in tests) telemetry starts."""

    def __init__(self, *args: Any) -> None:
        self._args = args
        self._real: tuple[Any, Any] | None = None

    def _tracer(self) -> Any:
        provider = _ActiveProvider.current
        if self._real is None or self._real[0] is not provider:
            self._real = (provider, provider.get_tracer(*self._args))
        return self._real[1]

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self._tracer().start_as_current_span(*args, **kwargs)


class _ActiveProvider(trace.TracerProvider):
    """Cello's global tracer provider (see ``_ActiveTracer``)."""

    current: Any = trace.NoOpTracerProvider()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _ActiveTracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )


def _install_globals() -> None:
    """Makes Cello's provider the global one (unless the process has its
    own), reports handler exceptions to the span, and has ``AsyncClient``
    trace its requests."""
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(_ActiveProvider())
    elif not isinstance(current, _ActiveProvider):
        log.warning(
            "a global OpenTelemetry tracer provider is already set: spans made with "
            "opentelemetry.trace.get_tracer() go to it, Cello's request spans to Cello's exporter"
        )
    _support.exception_observer = _note_exception
    client._tracing = _client_span


@contextmanager
def _client_span(
    method: str, url: str, headers: list[tuple[str, str]]
) -> Iterator[Callable[[int], None]]:
    """A CLIENT span around one ``AsyncClient`` request; ``traceparent``
    (and ``tracestate``) go into ``headers`` unless the caller set one."""
    provider = _ActiveProvider.current
    if isinstance(provider, trace.NoOpTracerProvider):
        yield lambda status: None
        return
    parts = urlsplit(url)
    attributes: dict[str, Any] = {
        "http.request.method": method if method in _METHODS else "_OTHER",
        "url.full": url,
    }
    if parts.hostname:
        attributes["server.address"] = parts.hostname
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port:
        attributes["server.port"] = port
    tracer = provider.get_tracer(_INSTRUMENTATION)
    with tracer.start_as_current_span(
        method, kind=SpanKind.CLIENT, attributes=attributes, record_exception=True
    ) as span:
        if not any(name.lower() == "traceparent" for name, _ in headers):
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)
            headers.extend(carrier.items())

        def record(status: int) -> None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", str(status))

        yield record
