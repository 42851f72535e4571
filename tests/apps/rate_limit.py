"""Apps for the rate-limit tests.

- ``app``: one blueprint per native scenario, each with a limit of its own
  (``bp.use(RateLimitConfig...)``), so one server covers them all, and a
  mounted Starlette app under a limit;
- ``keyed``: a ``key_func`` limit and a per-user limit, run in Python;
- ``build()`` / ``build_keyed()`` make fresh ones for the in-process door.

Refills are slow (one token in 1000 s), so no test waits or races a refill.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cello import App, Blueprint, RateLimitConfig, Response

SLOW = 0.001


def _scenario(app: App, prefix: str, config: RateLimitConfig) -> None:
    bp = Blueprint(prefix)
    bp.use(config)

    @bp.get("/ping")
    def ping(request):
        return {"state": request.context.get("rate_limit_state")}

    @bp.get("/fail")
    def fail(request):
        return Response.json({"failed": True}, status=500)

    @bp.get("/health")
    def health(request):
        return {"ok": True}

    app.register_blueprint(bp)


def build() -> App:
    app = App()
    _scenario(app, "/tb", RateLimitConfig.token_bucket(3, SLOW, exempt_paths=["/tb/health"]))
    _scenario(app, "/sw", RateLimitConfig.sliding_window(max_requests=3, window_secs=86400))
    _scenario(app, "/spoof", RateLimitConfig.token_bucket(2, SLOW))
    _scenario(
        app, "/proxied", RateLimitConfig.token_bucket(2, SLOW, trusted_proxies=["127.0.0.0/8"])
    )
    _scenario(app, "/apikey", RateLimitConfig.token_bucket(1, SLOW, key_by="header:X-API-Key"))
    _scenario(
        app,
        "/adaptive",
        RateLimitConfig.adaptive(
            20, SLOW, min_capacity=2, error_threshold=0.1,
            cpu_threshold=None, memory_threshold=None, latency_threshold=None,
        ),
    )  # fmt: skip
    # A mounted ASGI app is limited like the app's own routes.
    mounted = Blueprint("/legacy")
    mounted.use(RateLimitConfig.token_bucket(1, SLOW))
    app.register_blueprint(mounted)
    app.mount("/legacy", Starlette(routes=[Route("/hello", _hello)]))
    return app


async def _hello(request):
    return PlainTextResponse("from starlette")


def build_keyed() -> App:
    app = App()

    @app.before_request
    def authenticate(request):
        # Stands in for an authentication middleware.
        user = request.headers.get("x-user")
        if user:
            request.context["user"] = {"sub": user}

    def tenant(request):
        return request.headers.get("x-tenant")

    bp_tenant = RateLimitConfig.token_bucket(
        2, SLOW, key_func=tenant, exempt_paths=["/user", "/health"]
    )
    app.enable_rate_limit(bp_tenant)
    app.enable_rate_limit(
        RateLimitConfig.token_bucket(1, SLOW, key_by="user", exempt_paths=["/tenant", "/health"])
    )

    @app.get("/tenant")
    def by_tenant(request):
        return {"state": request.context.get("rate_limit_state")}

    @app.get("/user")
    def by_user(request):
        return {"state": request.context.get("rate_limit_state")}

    @app.get("/health")
    def health(request):
        return {"ok": True}

    return app


app = build()
keyed = build_keyed()
