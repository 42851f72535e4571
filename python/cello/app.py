"""``App``: routes, exception handlers, lifecycle hooks, and ``run()``."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, TypeVar

from cello import _after_response as after_response
from cello import _cello
from cello._binding import DependencyState, bind
from cello._middleware import Entry, MiddlewareDecorators, PythonChain
from cello._routes import (
    WEBSOCKET,
    RouteDecorators,
    RouteInfo,
    can_suspend,
    check_body_limit,
    check_guards,
    is_async_handler,
    takes_request,
)
from cello._websocket_routes import WebSocketRoute
from cello.asgi import AsgiAdapter
from cello.blueprints import Blueprint
from cello.caching import check_tags
from cello.exceptions import REFUSALS
from cello.guards import guard_handler
from cello.health import HealthCheck, HealthCheckConfig, HealthChecks
from cello.middleware import (
    AccessLog,
    CacheConfig,
    CircuitBreaker,
    CompressionConfig,
    CorsConfig,
    ETag,
    PrometheusConfig,
    RequestId,
    SecurityHeadersConfig,
    StaticFilesConfig,
)
from cello.middleware.auth import JwtAuth, JwtConfig
from cello.middleware.csrf import CsrfConfig, CsrfMiddleware
from cello.middleware.rate_limit import RateLimitConfig
from cello.middleware.sessions import SessionConfig, SessionMiddleware
from cello.mounts import Mount
from cello.openapi import OpenAPIDocs
from cello.responses import Response
from cello.routing import constraint_specs
from cello.telemetry import OpenTelemetryConfig
from cello.templates import MiniJinjaEngine, csrf_globals
from cello.validation import DTOConfig

__all__ = ["App"]

F = TypeVar("F", bound=Callable[..., Any])

_EVENTS = ("startup", "shutdown")


class App(RouteDecorators, MiddlewareDecorators):
    """A Cello application.

    Register handlers with the route decorators, then serve it natively with
    ``app.run()``.
    """

    def __init__(self) -> None:
        self._core = _cello.Cello()
        self._routes: list[RouteInfo] = []
        self._hooks: dict[str, list[Callable[[], Any]]] = {e: [] for e in _EVENTS}
        self._asgi = AsgiAdapter(self)
        self._mounts: list[Mount] = []
        self._python_middleware = PythonChain()
        self._body_limit: int | None = None
        self._guards: tuple[Any, ...] = ()
        self.state = SimpleNamespace()
        self._dependencies = DependencyState(self._hooks["shutdown"])
        # Every middleware added, in order: the OpenAPI spec reads the auth ones.
        self._middleware_entries: list[Entry] = []
        # Whether the startup hooks have run (the startup probe's answer).
        self._started = False
        self._health = HealthChecks(self)

    @property
    def debug(self) -> bool:
        """Tracebacks in 500 bodies; ``run()`` sets it from ``env``/``--debug``."""
        return bool(self._core.debug)

    @debug.setter
    def debug(self, value: bool) -> None:
        self._core.debug = bool(value)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The app as an ASGI 3 application (uvicorn, hypercorn, granian, httpx)."""
        await self._asgi(scope, receive, send)

    # -- routing -----------------------------------------------------------

    def _add_route(self, info: RouteInfo) -> None:
        call, is_async, suspends = self._endpoint(info)
        self._core.add_route(
            info.method,
            info.path,
            call,
            is_async,
            constraint_specs(info.constraints),
            suspends=suspends,
            body_limit=info.body_limit,
        )
        self._routes.append(info)

    def _endpoint(self, info: RouteInfo) -> tuple[Callable[[Any], Any], bool, bool]:
        """What the core calls for ``info``: its handler, adapted and guarded
        once, here, so nothing is decided per request."""
        if info.method == WEBSOCKET:
            # The handshake's endpoint: bound and guarded like any handler,
            # it hands the arguments to the connection (cello.websocket).
            info = replace(info, handler=WebSocketRoute(info.handler).endpoint())
        handler = info.handler
        self._cache_route(handler)
        # Probes carry no credentials: global guards are not theirs (docs/health.md).
        global_guards = () if getattr(handler, "__cello_probe__", False) else self._guards
        bound = bind(info, self._dependencies)
        if bound is not None:
            call, is_async, suspends = bound
            if global_guards or info.guards:
                return guard_handler(call, is_async, suspends, global_guards, info.guards)
            return bound
        is_async = is_async_handler(handler)
        call = handler
        if not takes_request(handler) and is_async:
            # Awaited inside a frame holding the request, so a BackgroundTasks
            # made in the handler finds the request it belongs to.
            async def call(request: Any, _h: Callable[[], Any] = handler) -> Any:
                return await _h()

        elif not takes_request(handler):
            # ``def index(): ...`` is common; adapt it once, here, not per request.
            def call(request: Any, _h: Callable[[], Any] = handler) -> Any:
                return _h()

        suspends = is_async and can_suspend(handler)
        if global_guards or info.guards:
            return guard_handler(call, is_async, suspends, global_guards, info.guards)
        return call, is_async, suspends

    def mount(self, path: str, app: Any, *, root_path: str = "") -> None:
        """Serves the ASGI application ``app`` (FastAPI, Starlette...) for every
        request under ``path``, any method.

        The app sees the full ``path`` and ``root_path`` = outer root + ``path``,
        as Starlette's and FastAPI's routing expect. Its lifespan runs once per
        worker process. ``root_path`` is prepended to both (``cello serve --root-path``).
        """
        if not callable(app):
            raise TypeError(f"mount() takes an ASGI application, not {type(app).__name__}")
        prefix = path.rstrip("/")
        mount = Mount(prefix=prefix, app=app)
        self._core.mount(prefix, app, mount.state, root_path)
        self._mounts.append(mount)

    @property
    def routes(self) -> list[RouteInfo]:
        """Every registered route, in registration order."""
        return list(self._routes)

    def register_blueprint(self, blueprint: Blueprint) -> None:
        """Adds every route of ``blueprint`` (nested ones included) with its prefixes."""
        if not isinstance(blueprint, Blueprint):
            raise TypeError(
                f"register_blueprint() takes a Blueprint, not {type(blueprint).__name__}"
            )
        for info in blueprint.routes():
            self._add_route(info)
        for entry in blueprint._middleware_entries():
            self._add_middleware(entry)

    # -- middleware --------------------------------------------------------

    def _add_middleware(self, entry: Entry) -> None:
        # Doors take the middleware they start with; the ASGI door's next
        # call opens a new one that sees this middleware too.
        self._asgi.forget_doors()
        self._middleware_entries.append(entry)
        if entry.native is not None:
            kind, options = entry.native._layer()
            self._core.add_layer(kind, entry.prefix, options)
        elif entry.python is not None:
            self._python_middleware.add(entry.prefix, entry.python)
            self._core.set_python_middleware(self._python_middleware.run)

    def enable_body_limit(self, max_size: int = 10 * 1024 * 1024) -> None:
        """Request bodies over ``max_size`` bytes get a 413, in every door, before
        they are read when ``Content-Length`` says so. It takes precedence over
        ``LimitsConfig.max_body_size``. A route's own ``body_limit=`` replaces
        it for that route."""
        limit = check_body_limit(max_size, "max_size")
        if limit is None:
            raise ValueError("max_size must be a non-negative number of bytes, not None")
        self._body_limit = limit
        self._core.max_body_size = limit

    def enable_request_id(self, header: str = "X-Request-ID") -> None:
        """Gives every request an ID (see ``cello.middleware.RequestId``)."""
        self.use(RequestId(header))

    # -- CORS and security headers -----------------------------------------

    def enable_cors(self, origins: Any = None, **options: Any) -> None:
        """Lets pages from other origins call the app from a browser; None
        allows any origin. The options are ``CorsConfig``'s (Starlette's
        names included): preflights are answered before routing, and every
        response gets the ``Access-Control-*`` headers its origin is due."""
        self.use(CorsConfig(origins, **options))

    def enable_security_headers(
        self, config: SecurityHeadersConfig | None = None, **options: Any
    ) -> None:
        """Adds ``X-Frame-Options``, ``X-Content-Type-Options`` and their kin
        to every response that lacks them (see ``SecurityHeadersConfig``;
        keyword options build one)."""
        if config is None:
            config = SecurityHeadersConfig(**options)
        elif options:
            raise ValueError("give enable_security_headers() a config or options, not both")
        elif not isinstance(config, SecurityHeadersConfig):
            raise ValueError(
                f"enable_security_headers() takes a SecurityHeadersConfig, not {config!r}"
            )
        self.use(config)

    # -- compression ---------------------------------------------------------

    def enable_compression(self, min_size: int | None = None) -> None:
        """Compresses responses of ``min_size`` bytes or more (default 1024) with
        zstd, brotli or gzip, as the client accepts (see
        ``cello.middleware.CompressionConfig`` for the other settings)."""
        self.use(CompressionConfig() if min_size is None else CompressionConfig(min_size))

    # -- conditional requests and access logging -----------------------------

    def enable_etag(self, weak: bool = False) -> None:
        """ETags on whole GET/HEAD responses and 304s for conditional requests
        (see ``cello.middleware.ETag``)."""
        self.use(ETag(weak))

    def enable_logging(
        self, *, format: str = "text", skip_paths: Iterable[str] = ("/health", "/metrics")
    ) -> None:
        """One access-log line per request on standard output (see
        ``cello.middleware.AccessLog``). ``run()`` calls it when logs are on,
        unless the app already logs. The default leaves out the health probes."""
        if tuple(skip_paths) == ("/health", "/metrics") and self._health.config is not None:
            skip_paths = (*skip_paths, *self._health.config.paths)
        self.use(AccessLog(format=format, skip_paths=skip_paths))

    def _logs_requests(self) -> bool:
        """Whether an access log covers every path already."""
        return ("AccessLog", "") in self._core.layers()

    # -- metrics -------------------------------------------------------------

    def enable_prometheus(
        self,
        endpoint: str = "/metrics",
        namespace: str = "cello",
        subsystem: str = "http",
        **options: Any,
    ) -> None:
        """Serves Prometheus metrics at ``endpoint``: ``{namespace}_{subsystem}_
        requests_total``, ``_request_duration_seconds``, ``_request_size_bytes``,
        ``_response_size_bytes`` and ``_requests_in_flight``, labelled with the
        method, the route template (never the raw path) and the status. The
        counts are shared by every worker process ``run(workers=N)`` forks, so
        call this before ``run()``. ``options`` are ``PrometheusConfig``'s
        (``skip_paths``, ``max_series``); see docs/metrics.md. A second call
        raises ``RuntimeError``."""
        if ("Metrics", "") in self._core.layers():
            raise RuntimeError("enable_prometheus() was already called for this app")
        self.use(PrometheusConfig(endpoint, namespace, subsystem, **options))

    # -- static files --------------------------------------------------------

    def enable_static_files(self, config: StaticFilesConfig) -> None:
        """Serves the files of ``config.root`` under ``config.prefix``, from
        Rust (see ``cello.middleware.StaticFilesConfig``). Call it once per
        prefix to serve several directories."""
        if not isinstance(config, StaticFilesConfig):
            raise TypeError(
                f"enable_static_files() takes a StaticFilesConfig, not {type(config).__name__}"
            )
        self.use(config)

    # -- rate limiting -------------------------------------------------------

    def enable_rate_limit(self, config: RateLimitConfig | None = None, **options: Any) -> None:
        """Limits how many requests each client makes (see ``RateLimitConfig``;
        keyword options build one). The budget is shared by every worker
        process ``run(workers=N)`` forks, so call this before ``run()``.
        Raises ``ValueError`` for a bad option (``"Unknown rate limit
        algorithm..."`` for an unknown algorithm)."""
        if config is None:
            config = RateLimitConfig(**options)
        elif options:
            raise ValueError("give enable_rate_limit() a config or options, not both")
        elif not isinstance(config, RateLimitConfig):
            raise ValueError(f"enable_rate_limit() takes a RateLimitConfig, not {config!r}")
        config.validate()
        if config._in_python():
            self._add_middleware(Entry("", python=config._middleware()))
        else:
            self.use(config)

    # -- response caching ----------------------------------------------------

    def enable_caching(
        self,
        ttl: int = 300,
        methods: Iterable[str] | None = None,
        exclude_paths: Iterable[str] | None = None,
        config: CacheConfig | None = None,
    ) -> None:
        """Caches whole 200/203/204 responses to GET in memory for ``ttl``
        seconds and serves HEAD from them (see ``CacheConfig`` and
        docs/caching.md). Call it before registering ``@cache`` routes."""
        if config is None:
            config = CacheConfig(ttl, methods, exclude_paths)
        elif not isinstance(config, CacheConfig):
            raise ValueError(f"enable_caching() takes a CacheConfig, not {config!r}")
        elif (ttl, methods, exclude_paths) != (300, None, None):
            raise ValueError("give enable_caching() a config or options, not both")
        if getattr(self, "_cache_implicit", False):
            raise RuntimeError(
                "enable_caching() must come before the first @cache route: that "
                "route already enabled a cache with the default settings"
            )
        if self._caches():
            raise RuntimeError("the response cache is already enabled")
        self._cache_ttl = config.ttl
        self.use(config)

    def invalidate_cache(self, tags: Iterable[str] | str) -> None:
        """Drops every cached response tagged with one of ``tags`` (see
        ``@cache(tags=...)``), in every worker process of the server."""
        _cello.invalidate_cache_tags(check_tags(tags, "invalidate_cache()"))

    def _caches(self) -> bool:
        return ("Cache", "") in self._core.layers()

    def _cache_route(self, handler: Any) -> None:
        """For a ``@cache`` route: its default TTL, and a cache for the
        decorated routes when the app has none."""
        spec = getattr(handler, "__cello_cache__", None)
        if spec is None:
            return
        if not self._caches():
            implicit = CacheConfig()
            implicit._marked_only = True
            self.use(implicit)
            self._cache_implicit = True
        spec.default_ttl = getattr(self, "_cache_ttl", CacheConfig().ttl)

    # -- authentication ------------------------------------------------------

    def enable_jwt(self, config: JwtConfig, skip_paths: Iterable[str] | None = None) -> None:
        """Requires a valid JWT on every request (``app.use(JwtAuth(config))``;
        see ``cello.middleware.JwtConfig``), except on ``skip_paths`` and
        CORS preflights."""
        self.use(JwtAuth(config, skip_paths=skip_paths))

    # -- guards and the circuit breaker ---------------------------------------

    def add_guard(self, guard: Any) -> None:
        """Adds a global guard: it runs before every route's own guards and
        handler, routes registered earlier included. None or True passes;
        False refuses with 403 "Python guard returned False", a str with 403
        and that message (see ``cello.guards`` and docs/guards.md)."""
        (checked,) = check_guards([guard], "add_guard()")
        self._guards = (*self._guards, checked)
        for info in self._routes:
            call, is_async, suspends = self._endpoint(info)
            self._core.replace_route(
                info.method, info.path, call, is_async, suspends, info.body_limit
            )

    @property
    def guards(self) -> tuple[Any, ...]:
        """The global guards, in the order they run."""
        return self._guards

    def enable_circuit_breaker(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30,
        half_open_target: int = 3,
        failure_codes: Iterable[int] | None = None,
        exempt_paths: Iterable[str] | None = None,
    ) -> None:
        """After ``failure_threshold`` failed responses in a row (5xx by
        default) every request gets a 503 for ``reset_timeout`` seconds (see
        ``cello.middleware.CircuitBreaker`` and docs/circuit-breaker.md);
        ``exempt_paths`` (health probes) are left alone."""
        self.use(
            CircuitBreaker(
                failure_threshold=failure_threshold,
                reset_timeout=reset_timeout,
                half_open_target=half_open_target,
                failure_codes=failure_codes,
                exempt_paths=exempt_paths,
            )
        )

    # -- sessions and CSRF ----------------------------------------------------

    def enable_sessions(self, config: SessionConfig | None = None, **options: Any) -> None:
        """``request.session`` for every request: a dict kept between requests
        in a store, found again through a signed cookie (see
        ``SessionConfig``; keyword options build one). Runs in the framework's
        Python tier, before the app's own Python middleware."""
        if config is None:
            config = SessionConfig(**options)
        elif options:
            raise ValueError("give enable_sessions() a SessionConfig or options, not both")
        elif not isinstance(config, SessionConfig):
            raise ValueError(f"enable_sessions() takes a SessionConfig, not {config!r}")
        self._set_framework_middleware("sessions", SessionMiddleware(config))

    def enable_session(self, config: SessionConfig | None = None, **options: Any) -> None:
        """The same as ``enable_sessions()``."""
        self.enable_sessions(config, **options)

    def enable_csrf(self, config: CsrfConfig | None = None, **options: Any) -> None:
        """Refuses unsafe requests (POST, PUT...) that do not echo the CSRF
        cookie's token in a header or form field: 403 "CSRF token
        validation failed" (see ``CsrfConfig``; keyword options build one)."""
        if config is None:
            config = CsrfConfig(**options)
        elif options:
            raise ValueError("give enable_csrf() a CsrfConfig or options, not both")
        elif not isinstance(config, CsrfConfig):
            raise ValueError(f"enable_csrf() takes a CsrfConfig, not {config!r}")
        self._set_framework_middleware("csrf", CsrfMiddleware(config))

    # -- templates (issue 20: cello.templates) --------------------------------

    _templates: MiniJinjaEngine | None = None

    def enable_templates(
        self,
        template_dir: str | os.PathLike[str] = "templates",
        auto_escape: bool = True,
        globals: Mapping[str, Any] | None = None,
        *,
        strict_undefined: bool = False,
    ) -> MiniJinjaEngine:
        """Templates from ``template_dir`` for ``app.render()``: a
        ``MiniJinjaEngine`` with ``globals`` and the CSRF helpers
        (``csrf_input(request)``, ``csrf_meta(request)``) available to every
        template. A second call raises ``RuntimeError``."""
        if self._templates is not None:
            raise RuntimeError("templates are already enabled for this app")
        engine = MiniJinjaEngine(template_dir, auto_escape, strict_undefined)
        engine.add_globals(csrf_globals())
        if globals:
            engine.add_globals(globals)
        self._templates = engine
        return engine

    @property
    def templates(self) -> MiniJinjaEngine:
        """The engine ``enable_templates()`` made (``RuntimeError`` before)."""
        if self._templates is None:
            raise RuntimeError("templates are not enabled: call app.enable_templates() first")
        return self._templates

    def render(self, name: str, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """Renders the template file ``name`` with ``context`` (and keyword values)."""
        return self.templates.render(name, context, **kwargs)

    def render_string(
        self, source: str, context: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """Renders template source given as a string (escaped as HTML when
        auto-escaping is on). Never pass it text from a user."""
        return self.templates.render_string(source, context, **kwargs)

    def template_response(
        self,
        name: str,
        context: Mapping[str, Any] | None = None,
        status: int = 200,
        headers: Any = None,
    ) -> Response:
        """``Response.html(app.render(name, context), status, headers)``."""
        return Response.html(self.render(name, context), status=status, headers=headers)

    # -- telemetry (cello.telemetry) -----------------------------------------

    def enable_telemetry(self, config: OpenTelemetryConfig | None = None, **options: Any) -> None:
        """A SERVER span for every request, exported over OTLP with W3C
        trace context in and out (see ``OpenTelemetryConfig``; keyword
        options build one). Needs ``pip install 'cello[otel]'``; see
        docs/telemetry.md."""
        if config is None:
            config = OpenTelemetryConfig(**options)
        elif options:
            raise ValueError("give enable_telemetry() a config or options, not both")
        elif not isinstance(config, OpenTelemetryConfig):
            raise ValueError(f"enable_telemetry() takes an OpenTelemetryConfig, not {config!r}")
        if self._python_middleware.tracing is not None:
            raise RuntimeError("telemetry is already enabled for this app")
        try:
            from cello._tracing import Tracing
        except ImportError as exc:
            raise ImportError(
                "app.enable_telemetry() needs the OpenTelemetry SDK and OTLP exporters: "
                f"pip install 'cello[otel]' ({exc})"
            ) from exc
        tracing = Tracing(config)
        self._asgi.forget_doors()
        self._python_middleware.tracing = tracing
        self._core.set_python_middleware(self._python_middleware.run)
        # Graceful shutdown exports what is pending, in each worker.
        self._hooks["shutdown"].append(tracing.shutdown)

    @property
    def telemetry(self) -> Any:
        """The app's tracing (``force_flush()``, ``shutdown()``), or None."""
        return self._python_middleware.tracing

    def _set_framework_middleware(self, kind: str, middleware: Any) -> None:
        self._asgi.forget_doors()
        self._python_middleware.set_framework(kind, middleware)
        self._core.set_python_middleware(self._python_middleware.run)

    def _before_fork(self, directory: str) -> None:
        """``run(workers=N)`` calls it in the master before forking: state the
        workers must share is set up here (sessions in an SQLite file in
        ``directory``, unless the app chose a store)."""
        sessions = self._python_middleware.framework("sessions")
        if isinstance(sessions, SessionMiddleware):
            sessions.before_fork(directory)

    # -- OpenAPI and the documentation pages (see cello.openapi) -------------

    def enable_openapi(
        self,
        title: str = "Cello API",
        version: str = "1.0.1",
        description: str | None = None,
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        openapi_url: str | None = "/openapi.json",
        servers: Any = None,
        **options: Any,
    ) -> None:
        """Serves the app's OpenAPI 3.1 document at ``openapi_url``, Swagger UI
        at ``docs_url`` and ReDoc at ``redoc_url`` (None leaves one out; no
        ``openapi_url``, no pages). The document is built from the routes
        on first request; see docs/openapi.md for what goes into it and the
        other ``options``."""
        if getattr(self, "_openapi_docs", None) is not None:
            raise RuntimeError("enable_openapi() was already called for this app")
        docs = OpenAPIDocs(
            self,
            title=title,
            version=version,
            description=description,
            docs_url=docs_url,
            redoc_url=redoc_url,
            openapi_url=openapi_url,
            servers=servers,
            **options,
        )
        for path, endpoint in docs.routes():
            self._add_route(RouteInfo(method="GET", path=path, handler=endpoint))
        self._openapi_docs = docs

    def openapi(self) -> dict[str, Any]:
        """The app's OpenAPI document, as ``/openapi.json`` serves it (with
        the default title and version when ``enable_openapi()`` was not called)."""
        docs = getattr(self, "_openapi_docs", None)
        if docs is None:
            docs = OpenAPIDocs(self, openapi_url=None)
        return docs.spec()

    # -- health checks (see cello.health and docs/health.md) -----------------

    def enable_health_checks(self, config: HealthCheckConfig | None = None) -> HealthCheckConfig:
        """Serves ``<base>/live`` (and ``/liveness``), ``<base>/ready`` (and
        ``/readiness``), ``<base>/startup`` and the report at ``<base>``,
        for GET and HEAD: 200 when healthy, 503 when not. Without a config:
        details on and check results cached for 5 seconds. Returns the config."""
        if config is None:
            config = HealthCheckConfig(include_details=True, cache_secs=5)
        elif not isinstance(config, HealthCheckConfig):
            raise TypeError(
                f"enable_health_checks() takes a HealthCheckConfig, not {type(config).__name__}"
            )
        if self._health.config is not None:
            raise RuntimeError("enable_health_checks() was already called for this app")
        taken = {(info.method, info.path) for info in self._routes}
        health = self._health
        health.config = config
        for path, endpoint in health.routes():
            if ("GET", path) in taken:
                if path in config.paths[1:4] or path == config.base_path:
                    health.config = None
                    raise RuntimeError(f"enable_health_checks(): the app already has GET {path}")
                continue  # an alias the app uses for itself
            self._add_route(RouteInfo(method="GET", path=path, handler=endpoint))
        return config

    def health_check(
        self,
        name: str | Callable[[], Any] | None = None,
        *,
        critical: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Decorator adding a check to the readiness probe and the report
        (``@app.health_check("db")``, or bare: named after the function).
        See ``add_health_check``."""
        if callable(name):
            self.add_health_check(getattr(name, "__name__", repr(name)), name)
            return name

        def decorator(check: F) -> F:
            label = name if name is not None else getattr(check, "__name__", repr(check))
            self.add_health_check(label, check, critical=critical, timeout=timeout)
            return check

        return decorator

    def add_health_check(
        self,
        name: str,
        check: Callable[[], Any],
        *,
        critical: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Adds ``check`` (sync, run in a thread, or async), run concurrently
        with the others within ``timeout`` (default the config's
        ``timeout_secs``). It returns True/None (UP), False (DOWN), a status,
        a dict (``status``, ``message`` and details) or raises (DOWN). A
        failing non-critical check makes the app DEGRADED, still 200."""
        self._health.add(HealthCheck(name, check, critical=bool(critical), timeout_secs=timeout))

    def _startup_work(self) -> bool:
        """Whether starting the app runs anything (hooks, mounted lifespans)."""
        return bool(self._hooks["startup"] or self._mounts)

    # -- errors ------------------------------------------------------------

    def exception_handler(self, exc_type: type[BaseException] | int) -> Callable[[F], F]:
        """Decorator: ``handler(request, exc)`` answers for ``exc_type`` and its
        subclasses, or for every ``HTTPException`` with the status code
        ``exc_type``. It may be ``async`` and may return anything a route may.

        It also answers the framework's own errors it covers (``404`` or
        ``NotFound`` for unknown paths, ``405``, ``413``, ``408``).
        """
        if isinstance(exc_type, int) and not isinstance(exc_type, bool):
            if not 400 <= exc_type <= 599:
                raise ValueError(f"exception_handler() status must be 4xx or 5xx, not {exc_type}")
            refusals = [exc_type] if exc_type in REFUSALS else []
        elif isinstance(exc_type, type) and issubclass(exc_type, BaseException):
            refusals = [s for s, cls in REFUSALS.items() if issubclass(cls, exc_type)]
        else:
            raise TypeError("exception_handler() takes an exception class or a status code")

        def decorator(handler: F) -> F:
            self._core.add_exception_handler(exc_type, handler, is_async_handler(handler), refusals)
            return handler

        return decorator

    # -- dependency injection and validation ---------------------------------

    def register_singleton(self, name: str, value: Any) -> None:
        """Makes ``value`` what ``Depends(name)`` gives every handler and
        dependency (see docs/dependencies.md). It may be registered after
        the routes that use it; a name still unknown when a request needs it
        is a ``LookupError`` (500)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"register_singleton() name must be a non-empty str, not {name!r}")
        self._dependencies.singletons[name] = value

    @property
    def dependency_overrides(self) -> dict[Any, Any]:
        """``{dependency: replacement}``: requests call the replacement
        instead (for tests, as in FastAPI); takes effect at once."""
        return self._dependencies.overrides

    @property
    def dto_config(self) -> DTOConfig:
        """How request bodies are validated, for routes without their own
        ``@dto(...)`` (see ``cello.validation.DTOConfig``)."""
        return self._dependencies.dto_config

    @dto_config.setter
    def dto_config(self, config: DTOConfig) -> None:
        self.enable_validation(config)

    def enable_validation(self, config: DTOConfig | None = None, **options: Any) -> None:
        """Sets the app's ``DTOConfig`` (keyword options build one), for the
        routes registered before and after."""
        if config is None:
            config = DTOConfig(**options)
        elif options:
            raise ValueError("give enable_validation() a DTOConfig or options, not both")
        elif not isinstance(config, DTOConfig):
            raise ValueError(f"enable_validation() takes a DTOConfig, not {config!r}")
        self._dependencies.dto_config = config
        self._rebind_routes()

    def _rebind_routes(self) -> None:
        for info in self._routes:
            call, is_async, suspends = self._endpoint(info)
            self._core.replace_route(
                info.method, info.path, call, is_async, suspends, info.body_limit
            )

    # -- lifecycle ---------------------------------------------------------

    def on_event(self, event_type: str) -> Callable[[F], F]:
        """Decorator for ``"startup"``/``"shutdown"`` hooks (sync or async, no arguments)."""
        if event_type not in _EVENTS:
            raise ValueError(
                f"Invalid event type: {event_type!r} (expected 'startup' or 'shutdown')"
            )

        def decorator(hook: F) -> F:
            self._hooks[event_type].append(hook)
            return hook

        return decorator

    def on_startup(self, hook: F) -> F:
        return self.on_event("startup")(hook)

    def on_shutdown(self, hook: F) -> F:
        return self.on_event("shutdown")(hook)

    async def _run_hooks(self, event: str, shutdown_timeout: float | None = None) -> None:
        """Runs the app's hooks and, around them, the mounted apps' lifespans."""
        from cello.mounts import start_all, stop_all

        if event == "startup":
            await start_all(self._mounts)
        if event == "shutdown":
            # Background work of the last requests may still need what the
            # shutdown hooks close.
            await after_response.drain(shutdown_timeout)
        if event == "shutdown":
            self._started = False
        for hook in self._hooks[event]:
            result = hook()
            if inspect.isawaitable(result):
                await result
        if event == "startup":
            self._started = True
        if event == "shutdown":
            await stop_all(self._mounts, shutdown_timeout)
            sessions = self._python_middleware.framework("sessions")
            if isinstance(sessions, SessionMiddleware):
                sessions.close()

    # -- serving -----------------------------------------------------------

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        debug: bool | None = None,
        env: str | None = None,
        workers: int | None = None,
        reload: bool = False,
        logs: bool | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> None:
        """Serves the app with the native server until SIGINT/SIGTERM.

        Command-line flags (``--host``, ``--port``, ``--env``, ``--workers``,
        ``--threads``, ``--debug``, ``--reload``, ``--no-logs``,
        ``--log-format``) override the arguments. See docs/running.md.
        """
        from cello._launch import run_app
        from cello._settings import flags_from_argv, main_dir, resolve

        code = dict(host=host, port=port, debug=debug, env=env, workers=workers,
                    reload=reload or None, logs=logs, threads=threads, **options)  # fmt: skip
        config = resolve(code, flags_from_argv(sys.argv[1:]), reload_dir=main_dir())
        run_app(self, config)
