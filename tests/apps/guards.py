"""Apps for tests/test_guards.py: route, blueprint and global guards over a
user that a small Python middleware puts in ``request.context``.

``X-User`` carries the user as JSON (a dict, as JWT claims are);
``X-User-Object`` carries ``roles;permissions`` for a user that is an
object with attributes."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from cello import App, Blueprint, Response
from cello.guards import (
    And,
    Authenticated,
    ForbiddenError,
    Guard,
    GuardError,
    Not,
    Or,
    Permission,
    Role,
)


def _install_user(app: App | Blueprint) -> None:
    @app.middleware("http")
    async def user_from_headers(request: Any, call_next: Any) -> Any:
        if "x-user" in request.headers:
            request.context["user"] = json.loads(request.headers["x-user"])
        elif "x-user-object" in request.headers:
            roles, _, permissions = request.headers["x-user-object"].partition(";")
            request.context["user"] = SimpleNamespace(roles=roles, permissions=permissions)
        response = await call_next(request)
        # A refusal reaches the middleware as the response it became.
        response.set_header("X-Middleware-Saw", str(response.status))
        return response


class OfficeHours(Guard):
    """An async guard: it awaits before it decides."""

    async def __call__(self, request: Any) -> bool | str:
        await asyncio.sleep(0)
        return request.headers.get("x-hour") == "9" or "Office closed"


class Broken(Guard):
    def __call__(self, request: Any) -> bool:
        raise RuntimeError("boom")


app = App()
_install_user(app)


@app.get("/public")
def public(request: Any) -> dict[str, str]:
    return {"ok": "public"}


@app.get("/me", guards=[Authenticated()])
def me(request: Any) -> Any:
    return request.context["user"]


@app.get("/admin", guards=[Role(["admin"])])
def admin(request: Any) -> dict[str, str]:
    return {"ok": "admin"}


@app.get("/chief", guards=[Role(["admin", "editor"], require_all=True)])
def chief(request: Any) -> dict[str, str]:
    return {"ok": "chief"}


@app.post("/posts", guards=[Permission(["posts:read", "posts:write"])])
def write_post(request: Any) -> dict[str, str]:
    return {"ok": "written"}


@app.get("/posts", guards=[Permission(["posts:read", "posts:admin"], require_all=False)])
def read_posts(request: Any) -> dict[str, str]:
    return {"ok": "read"}


@app.get("/false", guards=[lambda request: False])
def false(request: Any) -> dict[str, str]:
    return {"ok": "never"}


@app.get("/message", guards=[lambda request: "Come back tomorrow"])
def message(request: Any) -> dict[str, str]:
    return {"ok": "never"}


@app.get("/broken", guards=[Broken()])
def broken(request: Any) -> dict[str, str]:
    return {"ok": "never"}


@app.get(
    "/teapot", guards=[lambda request: (_ for _ in ()).throw(GuardError("short and stout", 418))]
)
def teapot(request: Any) -> dict[str, str]:
    return {"ok": "never"}


@app.get("/office", guards=OfficeHours())
def office(request: Any) -> dict[str, str]:
    return {"ok": "open"}


@app.get("/office-async", guards=[Authenticated(), OfficeHours()])
async def office_async(request: Any) -> dict[str, str]:
    await asyncio.sleep(0)
    return {"ok": "open async"}


@app.get("/not-banned", guards=[Not(Role("banned"))])
def not_banned(request: Any) -> dict[str, str]:
    return {"ok": "welcome"}


@app.get("/not-broken", guards=[Not(Broken())])
def not_broken(request: Any) -> dict[str, str]:
    return {"ok": "never"}


@app.get("/either", guards=[Or(Role(["admin"]), Permission(["reports:read"]))])
def either(request: Any) -> dict[str, str]:
    return {"ok": "either"}


@app.get("/both", guards=[And([Role("staff"), OfficeHours()])])
def both(request: Any) -> dict[str, str]:
    return {"ok": "both"}


@app.get("/no-request", guards=[Authenticated()])
def no_request() -> dict[str, str]:
    return {"ok": "no request"}


staff = Blueprint("/staff", guards=[Role(["staff"])])
managers = Blueprint("/managers", guards=[Role("manager")])


@staff.get("/lounge")
def lounge(request: Any) -> dict[str, str]:
    return {"ok": "lounge"}


@managers.get("/office")
def managers_office(request: Any) -> dict[str, str]:
    return {"ok": "managers"}


@managers.delete("/budget", guards=[Permission("budget:delete")])
def delete_budget(request: Any) -> dict[str, str]:
    return {"ok": "deleted"}


staff.register(managers)
app.register_blueprint(staff)


# Global guards, one added before the routes and one after them.
globally = App()
_install_user(globally)
globally.add_guard(lambda request: request.headers.get("x-block") != "1")


@globally.get("/")
def global_index(request: Any) -> dict[str, str]:
    return {"ok": "global"}


@globally.get("/admin", guards=[Role("admin")])
async def global_admin(request: Any) -> dict[str, str]:
    return {"ok": "global admin"}


def _closed_on_sundays(request: Any) -> str | None:
    return "Closed on Sundays" if request.headers.get("x-day") == "sunday" else None


globally.add_guard(_closed_on_sundays)


# Refusals answered by exception handlers instead of the default problem.
handled = App()
_install_user(handled)


@handled.exception_handler(ForbiddenError)
def forbidden(request: Any, exc: ForbiddenError) -> Response:
    return Response.json({"refused": exc.message, "status": exc.status_code}, status=403)


@handled.exception_handler(401)
def unauthorized(request: Any, exc: Any) -> Response:
    return Response.text(f"please log in ({exc.detail})", status=401)


@handled.get("/admin", guards=[Role("admin")])
def handled_admin(request: Any) -> dict[str, str]:
    return {"ok": "admin"}
