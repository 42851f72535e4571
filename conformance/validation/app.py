"""An API whose handlers bind path, query, header and body parameters and
dependencies, for the validation conformance suite: every door must give
the same 200s, 401s, 415s and 422 problems."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from cello import (
    App,
    Blueprint,
    Depends,
    DTOConfig,
    Header,
    HTTPException,
    Request,
    RequestValidationError,
    Response,
)
from cello.validation import dto

app = App()


class Address(BaseModel):
    city: str
    zip: str = Field(pattern=r"^\d{5}$")


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []
    address: Address | None = None


class Public(BaseModel):
    name: str


def token(x_token: Annotated[str | None, Header()] = None) -> str:
    if x_token != "letmein":
        raise HTTPException(401, "a valid X-Token header is required")
    return x_token


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None, limit: int = Field(10, ge=1)) -> dict:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.get("/search")
async def search(terms: list[str], page: int = 1) -> dict:
    return {"terms": terms, "page": page}


@app.post("/items")
def create_item(item: Item, _: str = Depends(token)) -> Item:
    return item


@app.post("/items/strict")
@dto(DTOConfig(strict=True, forbid_extra=True, include_input=False))
async def create_strict(item: Item) -> dict:
    return {"name": item.name}


@app.get("/public", response_model=Public)
def public() -> dict:
    return {"name": "ada", "password": "hunter2"}


api = Blueprint("/v2")


@api.get("/items/{item_id}")
async def read_item_v2(request: Request, item_id: int) -> dict:
    return {"item_id": item_id, "path": request.path}


app.register_blueprint(api)

# A second app whose 422s an exception handler rewrites.
custom = App()


@custom.post("/items")
def custom_create(item: Item) -> dict:
    return {"name": item.name}


@custom.exception_handler(RequestValidationError)
def rewrite(request: Request, exc: RequestValidationError) -> Response:
    return Response.json({"errors": len(exc.errors())}, status=400)
