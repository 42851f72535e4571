"""Middleware: request IDs, a timing middleware, an auth hook on a
blueprint, and a custom 404, the same through every door.

Run it with::

    python examples/middleware.py              # on 127.0.0.1:8000
    uvicorn examples.middleware:app            # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/                        # X-Request-ID, Server-Timing
    curl -i -H 'X-Request-ID: abc' http://127.0.0.1:8000/ # the ID is kept
    curl -i http://127.0.0.1:8000/admin/stats             # 401 from the hook
    curl -i -H 'Authorization: Bearer s3cret' http://127.0.0.1:8000/admin/stats
    curl -i http://127.0.0.1:8000/nowhere                 # the custom 404
"""

import time

from cello import App, Blueprint

app = App()
app.enable_request_id()


@app.middleware("http")
async def timing(request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.set_header("Server-Timing", f"app;dur={elapsed_ms:.2f}")
    return response


@app.exception_handler(404)
def not_found(request, exc):
    return {"error": "nothing here", "path": request.path,
            "request_id": request.context["request_id"]}, 404  # fmt: skip


@app.get("/")
def index(request):
    return {"hello": "world", "request_id": request.context["request_id"]}


admin = Blueprint("/admin")


@admin.before_request
def require_token(request):
    if request.headers.get("authorization") != "Bearer s3cret":
        return {"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"}
    return None


@admin.get("/stats")
def stats(request):
    return {"requests": "many"}


app.register_blueprint(admin)

if __name__ == "__main__":
    app.run()
