"""Prometheus metrics: every request counted by method, route template and
status, timed and sized, with the counts of both worker processes in one
scrape.

Run it with::

    python examples/metrics.py

then::

    curl http://127.0.0.1:8000/orders/17
    curl http://127.0.0.1:8000/orders/18
    curl http://127.0.0.1:8000/no/such/page     # counted as path="<unmatched>"
    curl http://127.0.0.1:8000/metrics
    # cello_http_requests_total{method="GET",path="/orders/{order_id}",status="200"} 2
    # cello_http_request_duration_seconds_bucket{...,le="0.005"} ...
    # cello_http_requests_in_flight 0

Point Prometheus at it with a scrape job whose target is 127.0.0.1:8000
(docs/metrics.md has one).
"""

from cello import App

RUN_OPTIONS = {"workers": 2}

app = App()
# Before run(): the counters live in memory the forked workers share.
app.enable_prometheus()


@app.get("/orders/{order_id:int}")
def order(request):
    return {"order": int(request.params["order_id"]), "status": "shipped"}


@app.post("/orders")
def create_order(request):
    return {"created": request.json()}, 201


@app.get("/health")
def health(request):
    # Probes are not measured: they would drown the real traffic.
    return {"status": "ok"}


if __name__ == "__main__":
    app.run(**RUN_OPTIONS)
