"""Apps for tests/test_openapi.py: an inventory API documenting every part
of the spec (typed path and query parameters, bodies, response models,
tags, summaries, docstrings, guards and authentication), and small apps
for the options."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field, computed_field, create_model
from starlette.applications import Starlette

from cello import App, Blueprint, JwtConfig, Response
from cello.dependencies import Depends
from cello.guards import Authenticated, Role
from cello.middleware import SecurityHeadersConfig
from cello.middleware.auth import ApiKeyAuth, JwtAuth
from cello.openapi import operation
from cello.params import Cookie, Header, Path, Query

SECRET = "openapi-test-secret-of-32-bytes!"


class Dimensions(BaseModel):
    width: float
    height: float


class ItemIn(BaseModel):
    """An item as a client sends it."""

    name: str = Field(min_length=1, max_length=50)
    price: float = Field(ge=0)
    kind: Literal["tool", "part"] = "tool"
    dimensions: Dimensions | None = None


class Item(BaseModel):
    id: int
    name: str
    price: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        return f"{self.name} ({self.price})"


ITEMS = {1: Item(id=1, name="hammer", price=9.5)}

app = App()
app.enable_openapi(
    title="Inventory",
    version="2.0.0",
    tags=[{"name": "items", "description": "What the shop sells"}],
    servers=["/"],
)
# The strictest policy the pages need: the browser tests see no violation.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src blob:"
)
app.enable_security_headers(SecurityHeadersConfig(csp=STRICT_CSP))
PUBLIC = ["/docs", "/redoc", "/openapi.json", "/items", "/ping", "/public"]
app.use(JwtAuth(JwtConfig(SECRET), skip_paths=PUBLIC))


@app.get("/items", tags=["items"])
def list_items(limit: int = 10, kind: str | None = None) -> list[Item]:
    """List the items.

    At most ``limit`` of them, of one ``kind`` if given.
    """
    return list(ITEMS.values())[:limit]


@app.get("/items/{item_id}", tags=["items"])
@operation(responses={404: "No such item"})
def get_item(item_id: int) -> Item:
    """Read one item."""
    return ITEMS[item_id]


@app.post("/items", tags=["items"], summary="Create an item", description="Adds it to the shop.")
@operation(status_code=201)
def create_item(item: ItemIn) -> Item:
    """Ignored: the route gives a summary and a description."""
    return Item(id=2, name=item.name, price=item.price)


@app.get("/public/users/{user_id:uuid}")
def user(request: Any) -> dict[str, Any]:
    return {"id": request.params["user_id"]}


@app.get("/public/files/{*rest}")
def files(request: Any) -> Response:
    return Response.text(request.params["rest"])


@app.get("/public/stats", guards=[Authenticated()])
def stats(request: Any) -> dict[str, int]:
    return {"public": 1}


@app.get("/ping")
def ping(request: Any) -> str:
    return "pong"


@app.head("/ping")
def ping_head(request: Any) -> Response:
    return Response.no_content()


@app.get("/internal")
@operation(include_in_schema=False)
def internal(request: Any) -> dict[str, str]:
    return {"secret": "plans"}


@app.put("/items/{item_id}", tags=["items"], status_code=202)
def replace_item(item_id: int, item: ItemIn) -> None:
    """Replace an item, later."""


@app.get("/orders", tags=["orders"])
@operation(deprecated=True, operation_id="legacyOrders", openapi_extra={"x-internal": False})
def orders(request: Any) -> dict[str, list[str]]:
    return {"orders": []}


def _admin() -> Blueprint:
    admin = Blueprint("/admin", tags=["admin"], guards=[Role(["admin"])])
    admin.use(ApiKeyAuth({"key-1": "ops"}, header="X-Admin-Key"))

    @admin.get("/stats", tags=["stats"])
    def stats(request: Any) -> dict[str, int]:
        """The same function name as /public/stats: its operationId gets a suffix."""
        return {"admin": 1}

    @admin.delete("/items/{item_id:int}")
    def delete_item(request: Any) -> Response:
        return Response.no_content()

    return admin


app.register_blueprint(_admin())


# -- small apps for the options --------------------------------------------

bare = App()
bare.enable_openapi()


@bare.get("/hello/{name}", tags=["greetings"])
def hello(name: str) -> dict[str, str]:
    """Say hello to someone.

    Greets ``name`` by name.
    """
    return {"hello": name}


relocated = App()
relocated.enable_openapi(
    title="Moved </script><script>alert(1)</script>",
    docs_url="/api/docs",
    redoc_url=None,
    openapi_url="/api/spec.json",
    swagger_ui_parameters={"docExpansion": "none"},
)


@relocated.get("/api/hello")
def relocated_hello(request: Any) -> dict[str, str]:
    return {"hello": "there"}


# -- parameters from markers and dependencies ---------------------------------

markers = App()


def pagination(page: int = 1, per_page: Annotated[int, Field(ge=1, le=100)] = 20) -> dict[str, int]:
    return {"page": page, "per_page": per_page}


def current_user(
    request: Any,
    token: Annotated[str, Header(alias="X-Token", description="Who is asking")],
    paging: dict[str, int] = Depends(pagination),
) -> str:
    return token


@markers.get("/search/{shelf}")
def search(
    shelf: Annotated[int, Path(description="The shelf to search")],
    words: Annotated[list[str], Query(alias="q")],
    session_id: Annotated[str | None, Cookie()] = None,
    user_agent: Annotated[str | None, Header()] = None,
    user: str = Depends(current_user),
    paging: dict[str, int] = Depends(pagination),
    db: Any = Depends("db"),
) -> dict[str, Any]:
    return {}


# -- a mounted FastAPI app that describes itself -------------------------------

legacy = FastAPI(title="Legacy")


# Named "Item" too, on purpose: the merged document must keep both apart.
LegacyItem = create_model("Item", sku=(str, ...))


@legacy.get("/items/{sku}", tags=["legacy"])
def legacy_item(sku: str) -> LegacyItem:  # type: ignore[valid-type]
    return LegacyItem(sku=sku)


@legacy.get("/ping")
def legacy_ping() -> dict[str, str]:
    return {"pong": "legacy"}


mounting = App()
mounting.enable_openapi()


@mounting.get("/items/{item_id}", tags=["items"])
def mounting_item(item_id: int) -> Item:
    return ITEMS[item_id]


mounting.mount("/legacy", legacy)
mounting.mount("/starlette", Starlette())
