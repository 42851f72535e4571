"""The app behind the rate-limit conformance cases: a native sliding-window
limit on ``/limited`` and a ``key_func`` limit (run in Python) on
``/keyed``, both counting days, so every door shows the same budgets, the
same ``X-RateLimit-Reset`` (the day's end) and the same 429s."""

from __future__ import annotations

from cello import App, Blueprint, RateLimitConfig

DAY = 86400

app = App()

limited = Blueprint("/limited")
limited.use(RateLimitConfig.sliding_window(2, DAY))


@limited.get("/ping")
def ping(request):
    return {"state": request.context.get("rate_limit_state")}


app.register_blueprint(limited)

app.enable_rate_limit(
    RateLimitConfig.sliding_window(
        2, DAY, key_func=lambda request: request.headers.get("x-tenant"),
        exempt_paths=["/limited", "/open"],
    )
)  # fmt: skip


@app.get("/keyed")
def keyed(request):
    return {"state": request.context.get("rate_limit_state")}


@app.get("/open")
def open_path(request):
    return {"open": True}
