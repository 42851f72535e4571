"""Guards through both doors: route, blueprint and global guards, every
documented status and message, async guards, broken guards, exception
handlers replacing refusals; and the guard classes on their own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import cello
from cello import App, Blueprint
from cello.guards import (
    And,
    AndGuard,
    Authenticated,
    AuthenticatedGuard,
    ForbiddenError,
    Guard,
    GuardError,
    Not,
    NotGuard,
    Or,
    OrGuard,
    Permission,
    PermissionGuard,
    Role,
    RoleGuard,
    UnauthorizedError,
    verify_guards,
)
from cello.testing import TestClient
from tests.live import door_client

PROBLEM = "application/problem+json"


def _client(door: str, name: str) -> Iterator[httpx.Client]:
    yield from door_client(door, f"tests.apps.guards:{name}", "--env", "production")


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "app")


@pytest.fixture(scope="module", params=["native", "asgi"])
def global_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "globally")


@pytest.fixture(scope="module", params=["native", "asgi"])
def handled_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from _client(request.param, "handled")


def user(**claims: Any) -> dict[str, str]:
    return {"x-user": json.dumps(claims)}


def refused(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["detail"] == detail
    assert body["instance"] == response.request.url.path


# -- through the doors -------------------------------------------------------


def test_an_unguarded_route_answers_anyone(client):
    assert client.get("/public").json() == {"ok": "public"}


@pytest.mark.parametrize(
    "path",
    ["/me", "/admin", "/chief", "/office-async", "/either", "/both", "/no-request",
     "/staff/lounge", "/staff/managers/office"],
)  # fmt: skip
def test_no_user_is_401_authentication_required(client, path):
    response = client.get(path)
    refused(response, 401, "Authentication required")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_user_passes_authenticated_and_the_handler_sees_it(client):
    claims = {"sub": "alice", "roles": ["reader"]}
    assert client.get("/me", headers=user(**claims)).json() == claims
    assert client.get("/no-request", headers=user(sub="a")).json() == {"ok": "no request"}


def test_role_any_of(client):
    assert client.get("/admin", headers=user(roles=["reader", "admin"])).status_code == 200
    refused(
        client.get("/admin", headers=user(roles=["reader"])), 403, "Requires one of roles: admin"
    )
    # No roles at all, or roles of the wrong type, hold nothing.
    refused(client.get("/admin", headers=user(sub="x")), 403, "Requires one of roles: admin")
    refused(client.get("/admin", headers=user(roles=7)), 403, "Requires one of roles: admin")
    refused(
        client.get("/admin", headers=user(roles=[["admin"]])), 403, "Requires one of roles: admin"
    )


def test_role_all_of_names_the_missing_ones(client):
    refused(
        client.get("/chief", headers=user(roles=[])), 403, "Missing required roles: admin, editor"
    )
    refused(
        client.get("/chief", headers=user(roles=["admin"])), 403, "Missing required roles: editor"
    )
    assert client.get("/chief", headers=user(roles="editor,admin")).status_code == 200


def test_roles_may_be_a_comma_or_space_separated_string(client):
    assert client.get("/admin", headers=user(roles="reader admin")).status_code == 200
    assert client.get("/admin", headers=user(roles="reader,admin")).status_code == 200
    assert client.get("/admin", headers=user(roles=" reader , admin ")).status_code == 200
    # Whole names only: no substring matches.
    refused(
        client.get("/admin", headers=user(roles="administrator")),
        403,
        "Requires one of roles: admin",
    )


def test_permissions_all_of_by_default_and_any_of_on_request(client):
    both = user(permissions=["posts:read", "posts:write"])
    assert client.post("/posts", headers=both).json() == {"ok": "written"}
    refused(
        client.post("/posts", headers=user(permissions=["posts:read"])),
        403,
        "Missing required permissions: posts:write",
    )
    assert client.get("/posts", headers=user(permissions="posts:admin")).status_code == 200
    refused(
        client.get("/posts", headers=user(permissions=[])),
        403,
        "Requires one of permissions: posts:read, posts:admin",
    )


def test_a_user_object_with_attributes_works_like_claims(client):
    assert client.get("/posts", headers={"x-user-object": "x;posts:read"}).status_code == 200
    assert client.get("/admin", headers={"x-user-object": "admin;"}).status_code == 200
    refused(
        client.get("/admin", headers={"x-user-object": "guest;"}),
        403,
        "Requires one of roles: admin",
    )


def test_a_guard_returning_false_or_a_message(client):
    refused(client.get("/false"), 403, "Access denied")
    refused(client.get("/message"), 403, "Come back tomorrow")


def test_a_broken_guard_is_a_403_never_a_500(client):
    refused(client.get("/broken"), 403, "Guard error: boom")
    # Not() of a broken guard refuses too: a bug never opens a route.
    refused(client.get("/not-broken"), 403, "Guard error: boom")


def test_a_guard_error_keeps_its_own_status(client):
    refused(client.get("/teapot"), 418, "short and stout")


def test_async_guards_are_awaited_for_sync_and_async_handlers(client):
    refused(client.get("/office"), 403, "Office closed")
    assert client.get("/office", headers={"x-hour": "9"}).json() == {"ok": "open"}
    refused(client.get("/office-async", headers=user(sub="a")), 403, "Office closed")
    ok = client.get("/office-async", headers={**user(sub="a"), "x-hour": "9"})
    assert ok.json() == {"ok": "open async"}


def test_not_passes_when_its_guard_refuses(client):
    assert client.get("/not-banned").status_code == 200  # no user: Role refuses
    assert client.get("/not-banned", headers=user(roles=["member"])).status_code == 200
    refused(
        client.get("/not-banned", headers=user(roles=["banned"])),
        403,
        "Guard succeeded but was expected to fail",
    )


def test_or_passes_on_any_and_refuses_with_the_first_real_refusal(client):
    assert client.get("/either", headers=user(roles=["admin"])).status_code == 200
    assert client.get("/either", headers=user(permissions=["reports:read"])).status_code == 200
    refused(client.get("/either", headers=user(roles=["x"])), 403, "Requires one of roles: admin")


def test_and_with_an_async_member(client):
    staff = user(roles=["staff"])
    refused(client.get("/both", headers=staff), 403, "Office closed")
    assert client.get("/both", headers={**staff, "x-hour": "9"}).status_code == 200
    refused(
        client.get("/both", headers={**user(roles=[]), "x-hour": "9"}),
        403,
        "Requires one of roles: staff",
    )


def test_blueprint_guards_cover_their_routes_and_nested_ones_accumulate(client):
    assert client.get("/staff/lounge", headers=user(roles=["staff"])).json() == {"ok": "lounge"}
    refused(
        client.get("/staff/lounge", headers=user(roles=["manager"])),
        403,
        "Requires one of roles: staff",
    )
    # The nested blueprint runs the outer guard first, then its own.
    refused(
        client.get("/staff/managers/office", headers=user(roles=["manager"])),
        403,
        "Requires one of roles: staff",
    )
    refused(
        client.get("/staff/managers/office", headers=user(roles=["staff"])),
        403,
        "Requires one of roles: manager",
    )
    both = user(roles=["staff", "manager"])
    assert client.get("/staff/managers/office", headers=both).json() == {"ok": "managers"}
    # ... and the route's own guard last.
    refused(
        client.delete("/staff/managers/budget", headers=both),
        403,
        "Missing required permissions: budget:delete",
    )
    allowed = user(roles=["staff", "manager"], permissions=["budget:delete"])
    assert client.delete("/staff/managers/budget", headers=allowed).status_code == 200


def test_head_is_guarded_like_get(client):
    assert client.head("/admin").status_code == 401
    assert client.head("/admin", headers=user(roles=["admin"])).status_code == 200


def test_global_guards_cover_routes_added_before_and_after_them(global_client):
    assert global_client.get("/").json() == {"ok": "global"}
    refused(global_client.get("/", headers={"x-block": "1"}), 403, "Python guard returned False")
    refused(global_client.get("/", headers={"x-day": "sunday"}), 403, "Closed on Sundays")
    # Global guards run before the route's own.
    refused(
        global_client.get("/admin", headers={"x-block": "1"}), 403, "Python guard returned False"
    )
    refused(global_client.get("/admin"), 401, "Authentication required")
    assert global_client.get("/admin", headers=user(roles=["admin"])).json() == {
        "ok": "global admin"
    }


def test_exception_handlers_replace_refusals(handled_client):
    response = handled_client.get("/admin", headers=user(roles=[]))
    assert response.status_code == 403
    assert response.json() == {"refused": "Requires one of roles: admin", "status": 403}
    response = handled_client.get("/admin")
    assert response.status_code == 401
    assert response.text == "please log in (Authentication required)"


# -- registration ------------------------------------------------------------


def test_routes_without_guards_keep_their_handler_as_registered():
    app = App()

    @app.get("/")
    def index(request: Any) -> str:
        return "x"

    assert app.routes[0].guards == ()
    assert app.routes[0].handler is index


def test_route_info_lists_guards_blueprints_first():
    outer_guard, inner_guard, route_guard = Authenticated(), Role("a"), Permission("p")
    outer = Blueprint("/o", guards=[outer_guard])
    inner = Blueprint("/i", guards=outer_guard and [inner_guard])

    @inner.get("/x", guards=route_guard)
    def x(request: Any) -> str:
        return "x"

    outer.register(inner)
    app = App()
    app.register_blueprint(outer)
    assert app.routes[0].path == "/o/i/x"
    assert app.routes[0].guards == (outer_guard, inner_guard, route_guard)


@pytest.mark.parametrize("bad", ["admin", 3, [Authenticated(), "nope"]])
def test_guards_must_be_callables(bad):
    app = App()
    with pytest.raises(TypeError, match="guard"):
        app.get("/", guards=bad)
    with pytest.raises(TypeError, match="guard"):
        Blueprint("/x", guards=bad)


def test_add_guard_takes_a_callable():
    with pytest.raises(TypeError, match="add_guard"):
        App().add_guard("admin")


def test_an_undeclared_async_guard_on_a_sync_route_refuses():
    app = App()

    class Sneaky:
        def __call__(self, request: Any) -> Any:
            async def later() -> bool:
                return True

            return later()

    @app.get("/", guards=[Sneaky()])
    def index(request: Any) -> str:
        return "x"

    with TestClient(app) as c:
        response = c.get("/")
    assert response.status_code == 403
    assert "was not declared `async def`" in response.json()["detail"]


# -- the guard classes -------------------------------------------------------


def request_with(user_value: Any = None, **context: Any) -> Any:
    if user_value is not None:
        context["user"] = user_value
    return SimpleNamespace(context=context)


def test_exports_and_aliases():
    assert RoleGuard is Role and PermissionGuard is Permission
    assert AuthenticatedGuard is Authenticated
    assert AndGuard is And and OrGuard is Or and NotGuard is Not
    for name in ("Guard", "RoleGuard", "PermissionGuard", "Authenticated", "And", "Or", "Not",
                 "GuardError", "ForbiddenError", "UnauthorizedError"):  # fmt: skip
        assert getattr(cello, name) is getattr(cello.guards, name)
        assert name in cello.__all__


def test_errors_are_http_exceptions_with_message_and_status():
    error = GuardError("nope")
    assert isinstance(error, cello.HTTPException)
    assert (error.message, error.status_code, error.detail) == ("nope", 403, "nope")
    assert GuardError("teapot", status_code=418).status_code == 418
    assert (ForbiddenError("x").status_code, ForbiddenError("x").message) == (403, "x")
    assert UnauthorizedError().message == "Authentication required"
    assert UnauthorizedError().status_code == 401
    assert UnauthorizedError("who?").message == "who?"


def test_custom_keys():
    guard = Role(["ops"], user_key="account", role_key="groups")
    guard(request_with(account={"groups": ["ops"]}))
    with pytest.raises(UnauthorizedError):
        guard(request_with({"groups": ["ops"]}))
    perm = Permission("deploy", perm_key="scope", user_key="account")
    perm(request_with(account={"scope": "read deploy"}))
    Authenticated(user_key="account")(request_with(account="bob"))


def test_verify_guards_is_and_logic_and_maps_returns():
    request = request_with({"roles": ["a"]})
    assert verify_guards([Role("a"), lambda r: True, lambda r: None], request) is None
    with pytest.raises(ForbiddenError, match=r"^403: Access denied$"):
        verify_guards([Role("a"), lambda r: False], request)
    with pytest.raises(ForbiddenError) as info:
        verify_guards([lambda r: "no way"], request)
    assert info.value.message == "no way"
    with pytest.raises(GuardError) as info:
        verify_guards([lambda r: 1 / 0], request)
    assert info.value.message == "Guard error: division by zero"
    # A truthy value that is not True is not a yes.
    with pytest.raises(GuardError, match="returned int"):
        verify_guards([lambda r: 1], request)


def test_verify_guards_returns_an_awaitable_from_the_first_async_guard():
    asyncio.run(_verify_async())


async def _verify_async() -> None:
    calls: list[str] = []

    async def slow(request: Any) -> bool:
        calls.append("slow")
        return True

    def after(request: Any) -> str:
        calls.append("after")
        return "stop"

    pending = verify_guards([slow, after], request_with())
    assert pending is not None
    with pytest.raises(ForbiddenError, match="stop"):
        await pending
    assert calls == ["slow", "after"]


def test_async_combinators():
    asyncio.run(_combinators())


async def _combinators() -> None:
    async def yes(request: Any) -> None:
        return None

    async def no(request: Any) -> bool:
        return False

    assert And(yes, yes)._is_async() and not And(Role("a"))._is_async()
    await And([yes, yes])(request_with())
    with pytest.raises(ForbiddenError, match="Access denied"):
        await And(yes, no)(request_with())
    await Or(no, yes)(request_with())
    with pytest.raises(ForbiddenError, match="Access denied"):
        await Or(no, no)(request_with())
    await Not(no)(request_with())
    with pytest.raises(ForbiddenError, match="expected to fail"):
        await Not(yes)(request_with())


def test_or_prefers_a_403_over_a_401_and_needs_guards():
    with pytest.raises(ForbiddenError, match="Requires one of roles: a"):
        Or(Authenticated(user_key="other"), Role("a"))(request_with({"roles": []}))
    with pytest.raises(UnauthorizedError):
        Or(Authenticated(), Role("a"))(request_with())
    with pytest.raises(ValueError, match="at least one guard"):
        Or()
    with pytest.raises(TypeError):
        And(Role("a"), "b")


@pytest.mark.parametrize("bad", [[], "", " , ", [""], [3], None, 5])
def test_roles_and_permissions_must_name_something(bad):
    with pytest.raises(ValueError, match="Role"):
        Role(bad)
    with pytest.raises(ValueError, match="Permission"):
        Permission(bad)


def test_the_base_guard_refuses_until_it_is_defined():
    with pytest.raises(GuardError, match="Guard error: Guard must define"):
        verify_guards([Guard()], request_with())

    class Always(Guard):
        def __call__(self, request: Any) -> bool:
            return True

    assert verify_guards([Always()], request_with()) is None


def test_python_middleware_sees_a_refusal_as_its_response(client):
    assert client.get("/admin").headers["x-middleware-saw"] == "401"
    assert client.get("/broken").headers["x-middleware-saw"] == "403"
    assert client.get("/admin", headers=user(roles=["admin"])).headers["x-middleware-saw"] == "200"


def test_a_broken_guard_is_logged_with_its_traceback(caplog):
    def broken(request: Any) -> bool:
        raise KeyError("tenant")

    request = SimpleNamespace(context={}, method="GET", path="/t")
    with caplog.at_level("ERROR", logger="cello.error"):
        with pytest.raises(GuardError, match="Guard error: 'tenant'"):
            verify_guards([broken], request)
    (record,) = caplog.records
    assert "GET /t" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_an_http_exception_raised_by_a_guard_passes_unchanged():
    def busy(request: Any) -> None:
        raise cello.HTTPException(429, "slow down", {"Retry-After": "5"})

    with pytest.raises(cello.HTTPException) as info:
        verify_guards([busy], request_with())
    assert (info.value.status_code, info.value.headers) == (429, {"Retry-After": "5"})
    with pytest.raises(cello.HTTPException, match="slow down"):
        Not(busy)(request_with())


def test_any_mapping_is_read_by_key_and_anything_else_by_attribute():
    from types import MappingProxyType

    Role("a")(request_with(MappingProxyType({"roles": ["a"]})))
    Role("a")(request_with(SimpleNamespace(roles=("a",))))
    with pytest.raises(ForbiddenError):
        Role("a")(request_with(SimpleNamespace()))
