"""Two worker processes behind one limit of 20 requests (per client, with
no refill to speak of): the budget lives in memory both workers share."""

from __future__ import annotations

import os

from cello import App, RateLimitConfig

RUN_OPTIONS = {"workers": 2}

app = App()
app.enable_rate_limit(RateLimitConfig.token_bucket(20, 0.0001, exempt_paths=["/pid"]))


@app.get("/limited")
def limited(request):
    return {"pid": os.getpid()}


@app.get("/pid")
def pid(request):
    return {"pid": os.getpid()}
