"""Guards: role- and permission-based access control, plus a circuit
breaker in front of a fragile endpoint.

A real app would put the user in ``request.context["user"]`` with JWT or
API-key authentication; this example reads an ``X-User`` header of JSON
claims in a small middleware, to stay self-contained. Never do that in
production: anyone can send any header.

Run it with::

    python examples/guards.py                  # on 127.0.0.1:8000
    uvicorn examples.guards:app                # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/articles                  # anyone: 200
    curl -i -X POST http://127.0.0.1:8000/articles          # no user: 401
    curl -i -X POST http://127.0.0.1:8000/articles \\
         -H 'X-User: {"sub": "ann", "roles": ["reader"]}'    # 403 Requires one of roles: ...
    curl -i -X POST http://127.0.0.1:8000/articles \\
         -H 'X-User: {"sub": "bo", "roles": "editor"}'       # 201
    curl -i http://127.0.0.1:8000/admin/audit \\
         -H 'X-User: {"sub": "cy", "roles": ["admin"], "permissions": ["audit:read"]}'
    curl -i http://127.0.0.1:8000/search?fail=1             # 500, then 503 for 30 s
"""

import json

from cello import App, Blueprint, Response
from cello.guards import Authenticated, Guard, Not, Permission, Role
from cello.middleware import CircuitBreaker

app = App()


@app.middleware("http")
async def demo_user(request, call_next):
    if "x-user" in request.headers:
        request.context["user"] = json.loads(request.headers["x-user"])
    return await call_next(request)


class NotSuspended(Guard):
    """A guard of your own: return None/True to pass, a str to refuse with it."""

    def __call__(self, request):
        user = request.context.get("user") or {}
        return "Account suspended" if user.get("suspended") else None


# Every route, including ones registered before this line.
app.add_guard(NotSuspended())


@app.get("/articles")
def list_articles(request):
    return {"articles": ["Hello"]}


@app.post("/articles", guards=[Role(["editor", "admin"])])
def create_article(request):
    return Response.json({"created": True, "by": request.context["user"]["sub"]}, status=201)


@app.get("/me", guards=[Authenticated()])
def me(request):
    return request.context["user"]


@app.get("/signup", guards=[Not(Authenticated())])
def signup(request):
    return {"signup": "form"}


# Blueprint guards cover every route of the blueprint; route guards add to them.
admin = Blueprint("/admin", guards=[Role("admin")])


@admin.get("/audit", guards=[Permission(["audit:read"])])
def audit(request):
    return {"entries": []}


app.register_blueprint(admin)

# Five 5xx in a row and /search answers 503 for 30 s without calling the handler.
search = Blueprint("/search")
search.use(CircuitBreaker(failure_threshold=5, reset_timeout=30))


@search.get("")
def run_search(request):
    if request.query.get("fail"):
        raise RuntimeError("the search backend is down")
    return {"results": []}


app.register_blueprint(search)

if __name__ == "__main__":
    app.run()
