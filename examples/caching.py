"""Response caching: a product catalogue whose pages are served from memory
until they expire or an update invalidates them, in every worker.

Run it with::

    python examples/caching.py --workers 2     # on 127.0.0.1:8000
    uvicorn examples.caching:app               # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/products     # X-Cache: MISS, then HIT
    curl -i http://127.0.0.1:8000/products/1   # @cache(ttl=60, tags=...)
    curl -i -X PUT 'http://127.0.0.1:8000/products/1?price=12'
    curl -i http://127.0.0.1:8000/products/1   # MISS: the update invalidated it
    curl -i http://127.0.0.1:8000/health       # never cached

``served`` in each body counts the handler's calls in that worker: a hit
repeats the stored body, count included.
"""

from __future__ import annotations

from cello import App, cache
from cello.middleware import CacheConfig

app = App()
app.enable_caching(config=CacheConfig(ttl=300, max_bytes=16 * 1024 * 1024, max_entries=1000))

PRODUCTS = {1: {"id": 1, "name": "Cello strings", "price": 10}}
served = {"count": 0}


def _served() -> int:
    served["count"] += 1
    return served["count"]


@app.get("/products")
def list_products(request):
    # Cached for the app's ttl (300 s); the response says so in
    # Cache-Control, and a client's If-None-Match gets a 304.
    return {"products": list(PRODUCTS.values()), "served": _served()}


@app.get("/products/{product_id}")
@cache(ttl=60, tags=["products"])
async def get_product(request):
    product = PRODUCTS.get(int(request.params["product_id"]))
    if product is None:
        return {"error": "no such product"}, 404  # never cached: not a 2xx
    return {**product, "served": _served()}


@app.put("/products/{product_id}")
def update_product(request):
    product = PRODUCTS[int(request.params["product_id"])]
    product["price"] = int(request.query_params.get("price", product["price"]))
    # Every worker's copy of every product page goes stale at once.
    app.invalidate_cache(["products"])
    return product


@app.get("/health")
def health(request):
    return {"status": "ok"}


if __name__ == "__main__":
    app.run()
