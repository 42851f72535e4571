"""The outgoing HTTP client: a handler that calls two backend endpoints at
once with ``cello.AsyncClient`` and combines their answers, with one pooled
client for the whole app, a timeout, and a 502 problem when the backend
fails.

Run it with::

    python examples/http_client.py             # on 127.0.0.1:8000
    uvicorn examples.http_client:app           # or under any ASGI server

then ``curl http://localhost:8000/dashboard``. The backend is this same app
(``/api/users`` and ``/api/orders``) unless ``BACKEND_URL`` names another
server; ``BACKEND_URL=http://127.0.0.1:9 python examples/http_client.py``
shows the 502 (nothing listens on port 9).
"""

import asyncio
import os

from cello import App, AsyncClient, HTTPException
from cello.client import ClientError

app = App()
app.state.client = None


@app.on_event("startup")
def open_client():
    # One client per process: its connections are pooled and reused.
    app.state.client = AsyncClient(timeout=5.0, headers={"Accept": "application/json"})


@app.on_event("shutdown")
async def close_client():
    if app.state.client is not None:
        await app.state.client.aclose()


@app.get("/api/users")
def users(request):
    return [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]


@app.get("/api/orders")
def orders(request):
    return [{"user": 1, "total": 30.5}, {"user": 1, "total": 12.0}, {"user": 2, "total": 7.25}]


def backend(request) -> str:
    return os.environ.get("BACKEND_URL") or f"{request.scheme}://{request.host}"


@app.get("/dashboard")
async def dashboard(request):
    client: AsyncClient = app.state.client
    base = backend(request)
    try:
        users_response, orders_response = await asyncio.gather(
            client.get(f"{base}/api/users"), client.get(f"{base}/api/orders")
        )
    except ClientError as error:
        raise HTTPException(502, f"the backend did not answer: {type(error).__name__}") from None
    if not (users_response.is_success and orders_response.is_success):
        raise HTTPException(502, "the backend answered with an error")
    totals: dict[int, float] = {}
    for order in orders_response.json():
        totals[order["user"]] = totals.get(order["user"], 0.0) + order["total"]
    return [
        {"name": user["name"], "orders_total": totals.get(user["id"], 0.0)}
        for user in users_response.json()
    ]


if __name__ == "__main__":
    app.run()
