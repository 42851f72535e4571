"""An app whose handlers declare path, query, header, cookie and body
parameters and dependencies, for tests/test_binding.py,
tests/test_validation.py and tests/test_dependencies.py. ``/events`` reports
what dependencies did (their cleanups run after the response)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field

from cello import (
    App,
    BackgroundTasks,
    Blueprint,
    Cookie,
    Depends,
    DTOConfig,
    Header,
    HTTPException,
    Query,
    Request,
    RequestValidationError,
    Response,
)
from cello.validation import dto

app = App()
EVENTS: list[str] = []
COUNTS: dict[str, int] = {}


def count(name: str) -> int:
    COUNTS[name] = COUNTS.get(name, 0) + 1
    return COUNTS[name]


@app.get("/events")
def events() -> dict[str, Any]:
    return {"events": EVENTS, "counts": COUNTS}


@app.post("/reset")
def reset() -> dict[str, bool]:
    EVENTS.clear()
    for key in [k for k in COUNTS if not k.startswith("singleton")]:
        del COUNTS[key]
    return {"ok": True}


# -- path, query, header and cookie parameters --------------------------------


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Level(enum.IntEnum):
    low = 1
    high = 2


@app.get("/items/{item_id}")
def get_item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.get("/shelves/{shelf_id:int}/{slug:alpha}")
def get_shelf(shelf_id: int, slug: str, q: str = "") -> dict[str, Any]:
    return {"shelf_id": shelf_id, "slug": slug, "q": q}


@app.get("/typed/{uid}/{color}/{level}/{ratio}/{flag}")
async def typed(
    uid: uuid.UUID, color: Color, level: Level, ratio: float, flag: bool
) -> dict[str, Any]:
    return {
        "uid": str(uid),
        "color": color.value,
        "level": int(level),
        "ratio": ratio,
        "flag": flag,
    }


@app.get("/search")
def search(
    q: str,
    tags: list[str] = Query([], alias="tag"),
    ids: list[int] | None = None,
    page: Annotated[int, Field(ge=1, le=100)] = 1,
) -> dict[str, Any]:
    return {"q": q, "tags": tags, "ids": ids, "page": page}


@app.get("/whoami")
def whoami(
    request: Request,
    user_agent: str = Header("none"),
    token: Annotated[str, Header(alias="X-Token")] = "",
    session: str | None = Cookie(None),
) -> dict[str, Any]:
    return {
        "ua": user_agent,
        "token": token,
        "session": session,
        "path": request.path,
    }


@app.get("/files/{*rest}")
def files(rest: str) -> dict[str, str]:
    return {"rest": rest}


@app.get("/nothing")
def nothing() -> dict[str, bool]:
    return {"nothing": True}


@app.get("/only-request")
def only_request(req) -> dict[str, str]:
    return {"method": req.method}


def deny_without_key(request: Request) -> bool:
    return request.headers.get("x-key") == "open"


@app.get("/guarded/{n}", guards=[deny_without_key])
def guarded(n: int) -> dict[str, int]:
    return {"n": n}


shop = Blueprint("/shop")


@shop.get("/orders/{order_id}")
async def get_order(order_id: int, expand: bool = False) -> dict[str, Any]:
    return {"order_id": order_id, "expand": expand}


app.register_blueprint(shop)


# -- bodies and response models ------------------------------------------------


class Address(BaseModel):
    city: str
    zip: str = Field(min_length=5, max_length=5)


class Item(BaseModel):
    name: str
    price: float = Field(gt=0)
    tags: list[str] = []
    address: Address | None = None


class PublicUser(BaseModel):
    name: str


@app.post("/items")
def create_item(item: Item) -> Item:
    return item


@app.post("/items/async/{shelf}")
async def create_item_async(shelf: int, item: Item, dry_run: bool = False) -> dict[str, Any]:
    return {"shelf": shelf, "item": item, "dry_run": dry_run}


@app.post("/items/many")
def create_many(items: list[Item]) -> dict[str, int]:
    return {"count": len(items)}


@app.post("/items/optional")
def create_optional(item: Item | None = None) -> dict[str, Any]:
    return {"item": item}


@app.post("/items/strict")
@dto(DTOConfig(strict=True, forbid_extra=True))
def create_strict(item: Item) -> dict[str, Any]:
    return {"item": item}


@app.post("/items/quiet")
@dto(DTOConfig(include_input=False, max_errors=1))
def create_quiet(item: Item) -> dict[str, Any]:
    return {"item": item}


@app.get("/users/me", response_model=PublicUser)
def me() -> dict[str, str]:
    return {"name": "ada", "password": "secret"}


@app.get("/users/broken", response_model=PublicUser)
def broken_user() -> dict[str, str]:
    return {"nickname": "no name"}


@app.get("/users/list")
def list_users() -> list[PublicUser]:
    return [PublicUser(name="ada"), PublicUser(name="grace")]


@app.get("/users/raw")
def raw_response() -> PublicUser:
    return Response("as is", 202)  # type: ignore[return-value]


# -- a second app with its own validation settings and error handler ----------

strict_app = App()
strict_app.enable_validation(DTOConfig(forbid_extra=True))


@strict_app.post("/items")
def strict_create(item: Item) -> dict[str, str]:
    return {"name": item.name}


@strict_app.exception_handler(RequestValidationError)
def validation_failed(request: Request, exc: RequestValidationError) -> Response:
    fields = [".".join(str(part) for part in e["loc"]) for e in exc.errors()]
    return Response.json({"invalid": fields}, status=400)


# -- dependencies ---------------------------------------------------------------


class Database:
    def __init__(self, name: str) -> None:
        self.name = name


def settings() -> dict[str, int]:
    count("settings")
    return {"page_size": 25}


def pager(page: int = 1, config: dict[str, int] = Depends(settings)) -> dict[str, int]:
    return {"page": page, "size": config["page_size"]}


def current_user(request: Request, config: dict[str, int] = Depends(settings)) -> str:
    user = request.headers.get("x-user")
    if user is None:
        raise HTTPException(401, "who are you?", {"WWW-Authenticate": "Token"})
    if user == "crash":
        raise RuntimeError("the user store is down")
    return user


async def async_user(user: str = Depends(current_user)) -> str:
    return user.upper()


def session_resource():
    EVENTS.append("session open")
    try:
        yield "session"
    except Exception as exc:
        EVENTS.append(f"session saw {type(exc).__name__}: {exc}")
        raise
    finally:
        EVENTS.append("session closed")


async def async_resource():
    EVENTS.append("async open")
    try:
        yield "async resource"
    finally:
        EVENTS.append("async closed")


def once_per_process() -> int:
    return count("singleton")


def every_use() -> int:
    return count("transient")


def uncached() -> int:
    return count("uncached")


@app.get("/deps/singleton-name")
def uses_singleton(db: Database = Depends("db")) -> dict[str, str]:
    return {"db": db.name}


@app.get("/deps/unknown-singleton")
def unknown_singleton(cache: Any = Depends("cache")) -> dict[str, str]:
    return {"never": "reached"}


app.register_singleton("db", Database("primary"))  # after the route that uses it


@app.get("/deps/user")
async def user_route(
    user: str = Depends(current_user),
    shout: str = Depends(async_user),
    page: dict[str, int] = Depends(pager),
) -> dict[str, Any]:
    return {"user": user, "shout": shout, "page": page}


@app.get("/deps/sync-user")
def sync_user_route(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
    return {"user": user}


@app.get("/deps/scopes")
def scopes(
    a: int = Depends(once_per_process, scope="singleton"),
    b: int = Depends(every_use, scope="transient"),
    c: int = Depends(every_use, scope="transient"),
    d: int = Depends(uncached, use_cache=False),
    e: int = Depends(uncached, use_cache=False),
) -> dict[str, int]:
    return {"singleton": a, "transient": b + c, "uncached": d + e}


@app.get("/deps/cleanup")
def cleanup(session: str = Depends(session_resource)) -> dict[str, str]:
    EVENTS.append("handler")
    return {"session": session}


@app.get("/deps/cleanup-fails")
def cleanup_fails(session: str = Depends(session_resource)) -> dict[str, str]:
    EVENTS.append("handler")
    raise ValueError("handler broke")


@app.get("/deps/async-cleanup")
async def async_cleanup(
    resource: str = Depends(async_resource), session: str = Depends(session_resource)
) -> dict[str, str]:
    EVENTS.append("handler")
    return {"resource": resource, "session": session}


@app.get("/deps/cleanup-http-error")
async def cleanup_http_error(session: str = Depends(session_resource)) -> dict[str, str]:
    raise HTTPException(409, "conflict")


class Paging:
    def __init__(self, offset: int = 0, size: int = 10) -> None:
        self.offset, self.size = offset, size


@app.get("/deps/class")
def class_dependency(paging: Paging = Depends()) -> dict[str, int]:
    return {"offset": paging.offset, "size": paging.size}


@app.get("/deps/bad-query")
def dependency_with_bad_query(page: dict[str, int] = Depends(pager)) -> dict[str, int]:
    return page


def record(event: str) -> None:
    EVENTS.append(event)


@app.post("/deps/tasks")
def with_tasks(tasks: BackgroundTasks, session: str = Depends(session_resource)) -> dict[str, int]:
    EVENTS.append("handler")
    tasks.add_task(record, [f"task used the {session}"])
    return {"pending": tasks.pending_count()}


@app.post("/deps/tasks-fail")
async def tasks_then_failure(tasks: BackgroundTasks) -> dict[str, int]:
    tasks.add_task(record, ["never"])
    raise HTTPException(400, "refused")


@app.post("/items/created", status_code=201, response_model=PublicUser)
def created(item: Item) -> dict[str, str]:
    return {"name": item.name, "secret": "kept"}
