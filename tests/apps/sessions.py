"""Apps for the sessions tests.

- ``app``: sessions in a ``MemoryStore`` whose clock ``/advance`` moves
  (so expiry is tested without sleeping), cookies without ``Secure`` so an
  httpx cookie jar sends them over plain HTTP;
- ``strict``: the default cookie attributes (``Secure``, ``HttpOnly``,
  ``SameSite=Lax``, a day) plus a domain and a path;
- ``shared``: sessions under ``run(workers=2)``, the default store (the
  shared SQLite file) and a generated secret.
"""

from __future__ import annotations

import os

from cello import App, Response, SessionConfig
from cello.middleware import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


clock = FakeClock()
store = MemoryStore(clock=clock)

app = App()


# Registered before sessions are enabled, yet it runs inside them: the
# framework's tier always comes first.
@app.middleware("http")
async def tag_user(request, call_next):
    user = request.session.get("user")
    response = await call_next(request)
    if user is not None:
        response.set_header("X-User", user)
    return response


app.enable_sessions(SessionConfig(secret="test-secret", secure=False, max_age=600, store=store))


@app.get("/count")
def count(request):
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"], "new": request.context["session_is_new"]}


@app.get("/peek")
def peek(request):
    return {"data": dict(request.session), "id": request.session.id}


@app.post("/login")
def login(request):
    request.session.regenerate()
    request.session["user"] = request.json()["user"]
    return {"user": request.session["user"], "id": request.context["session_id"]}


@app.post("/rotate")
def rotate(request):
    request.session.rotate()
    return {"id": request.session.id}


@app.post("/logout")
def logout(request):
    request.session.clear()
    return {"data": dict(request.session)}


@app.post("/forget")
def forget(request):
    request.session.pop("count", None)
    return {"data": dict(request.session)}


@app.get("/touch")
def touch(request):
    request.session.modified = True  # a sliding expiry: saved again, 600 s more
    return {"data": dict(request.session)}


@app.get("/cached")
def cached(request):
    request.session["seen"] = True
    return Response.json({"ok": True}, headers={"Cache-Control": "public, max-age=60"})


@app.get("/boom")
def boom(request):
    request.session["half"] = "done"
    raise RuntimeError("the handler failed after changing the session")


@app.get("/advance")
def advance(request):
    clock.now += request.get_query_int("seconds", 0)
    return {"now": clock.now}


strict = App()
strict.enable_session(
    SessionConfig(secret=b"another-secret", cookie_domain="example.com", cookie_path="/app")
)


@strict.get("/app/login")
def strict_login(request):
    request.session["user"] = "ada"
    return {"ok": True}


@strict.get("/app/logout")
def strict_logout(request):
    request.session.clear()
    return {"ok": True}


shared = App()
shared.enable_sessions(SessionConfig(secure=False))


@shared.get("/count")
def shared_count(request):
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"], "worker": os.getpid()}
