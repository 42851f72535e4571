"""The app behind the guard and circuit-breaker conformance cases: guards
refusing and admitting a user that a Python middleware reads from
``X-User``, an exception handler replacing one refusal, and a circuit that
opens after one failure."""

from __future__ import annotations

import asyncio
import json

from cello import App, Blueprint, Response
from cello.guards import Authenticated, Guard, Not, Or, Permission, Role, UnauthorizedError
from cello.middleware import CircuitBreaker

app = App()


@app.middleware("http")
async def user_from_header(request, call_next):
    if "x-user" in request.headers:
        request.context["user"] = json.loads(request.headers["x-user"])
    return await call_next(request)


class Weekday(Guard):
    async def __call__(self, request):
        await asyncio.sleep(0)
        return request.headers.get("x-day") != "sunday" or "Closed on Sundays"


class Broken(Guard):
    def __call__(self, request):
        raise LookupError("no such tenant")


@app.exception_handler(UnauthorizedError)
def please_log_in(request, exc):
    return Response.json({"login": "/login", "reason": exc.message}, status=401)


@app.get("/me", guards=[Authenticated()])
def me(request):
    return {"user": request.context["user"]}


@app.get("/admin", guards=[Role(["admin", "owner"])])
def admin(request):
    return {"admin": True}


@app.post("/reports", guards=[Permission(["reports:read", "reports:write"])])
def reports(request):
    return {"written": True}


@app.get("/denied", guards=[lambda request: False])
def denied(request):
    return {"never": True}


@app.get("/weekday", guards=[Or(Role("admin"), Weekday())])
async def weekday(request):
    return {"open": True}


@app.get("/sunday", guards=Weekday())
def sunday(request):
    return {"open": True}


@app.get("/broken", guards=[Broken()])
def broken(request):
    return {"never": True}


@app.get("/not-admin", guards=[Not(Role("admin"))])
def not_admin(request):
    return {"plain": True}


staff = Blueprint("/staff", guards=[Role("staff")])


@staff.get("/lounge")
def lounge(request):
    return {"lounge": True}


app.register_blueprint(staff)

fragile = Blueprint("/fragile")
fragile.use(CircuitBreaker(failure_threshold=1, reset_timeout=3600))


@fragile.get("/fail")
def fail(request):
    raise RuntimeError("the database is down")


@fragile.get("/ok")
def ok(request):
    return {"ok": True}


app.register_blueprint(fragile)
