"""Rate limiting: 5 requests a minute per client on the API, one shared
budget for all worker processes, health checks left alone, and a tighter
limit per API key on the expensive route.

Run it with::

    python examples/rate_limit.py

then::

    for i in 1 2 3 4 5 6; do curl -si http://127.0.0.1:8000/api/quote | head -1; done
                                    # five 200s, then 429 with Retry-After
    curl -i http://127.0.0.1:8000/api/quote     # X-RateLimit-Limit/Remaining/Reset
    curl -i http://127.0.0.1:8000/health        # never limited, no X-RateLimit-*
    curl -i -H 'X-API-Key: k1' http://127.0.0.1:8000/reports/monthly
"""

from cello import App, Blueprint, RateLimitConfig

RUN_OPTIONS = {"workers": 2}

app = App()
app.enable_rate_limit(
    RateLimitConfig.token_bucket(requests=5, window=60, exempt_paths=["/health", "/reports"])
)

reports = Blueprint("/reports")
# One report a minute per API key (or per address, without a key).
reports.use(RateLimitConfig.sliding_window(1, 60, key_by="header:X-API-Key"))


@reports.get("/monthly")
def monthly(request):
    return {"report": "monthly", "budget": request.context["rate_limit_state"]}


app.register_blueprint(reports)


@app.get("/api/quote")
def quote(request):
    return {"quote": "Simplicity is prerequisite for reliability."}


@app.get("/health")
def health():
    return {"ok": True}


if __name__ == "__main__":
    app.run(**RUN_OPTIONS)
