"""A small CRUD API written the FastAPI way: path, query and body parameters
bound from the handler's signature, pydantic models validated from the JSON
body, dependencies (a registered singleton, a callable reading a header, a
generator with cleanup after the response) and a response model that keeps
a field private.

Run it with::

    python examples/items_api.py          # on 127.0.0.1:8000
    uvicorn examples.items_api:app        # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/items?limit=1
    curl -i http://127.0.0.1:8000/items/1
    curl -i http://127.0.0.1:8000/items/abc            # 422: item_id is not an int
    curl -i -X POST http://127.0.0.1:8000/items -H 'X-API-Key: secret' \\
         -H 'Content-Type: application/json' -d '{"name": "lamp", "price": 25}'
    curl -i -X POST http://127.0.0.1:8000/items -H 'X-API-Key: secret' \\
         -H 'Content-Type: application/json' -d '{"name": "", "price": -1}'   # 422
    curl -i -X DELETE http://127.0.0.1:8000/items/1    # 401 without the key
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from pydantic import BaseModel, Field

from cello import App, Depends, Header, HTTPException, Query, Response

log = logging.getLogger("items_api")
app = App()


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    price: float = Field(gt=0)
    tags: list[str] = []


class Item(ItemIn):
    id: int


class StoredItem(Item):
    supplier_cost: float  # never leaves the server: responses use Item


class Store:
    """An in-memory table; a real app would register its database pool."""

    def __init__(self) -> None:
        self.items: dict[int, StoredItem] = {}
        self.next_id = 1
        self.changes: list[str] = []

    def add(self, data: ItemIn) -> StoredItem:
        item = StoredItem(id=self.next_id, supplier_cost=data.price / 2, **data.model_dump())
        self.items[item.id] = item
        self.next_id += 1
        return item


app.register_singleton("store", Store())


def require_key(x_api_key: Annotated[str | None, Header()] = None) -> str:
    """Writes need ``X-API-Key: secret``."""
    if x_api_key != "secret":
        raise HTTPException(401, "a valid X-API-Key header is required")
    return x_api_key


def change_log(store: Store = Depends("store")) -> Iterator[list[str]]:
    """Collects what a request changed; writes it down after the response."""
    changes: list[str] = []
    try:
        yield changes
    finally:
        store.changes.extend(changes)
        if changes:
            log.info("changed: %s", ", ".join(changes))


def existing(item_id: int, store: Store = Depends("store")) -> StoredItem:
    item = store.items.get(item_id)
    if item is None:
        raise HTTPException(404, f"no item {item_id}")
    return item


@app.get("/items", response_model=list[Item])
def list_items(
    store: Store = Depends("store"),
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    tag: str | None = None,
) -> list[StoredItem]:
    items = [i for i in store.items.values() if tag is None or tag in i.tags]
    return items[offset : offset + limit]


@app.get("/items/{item_id}", response_model=Item)
def read_item(item: StoredItem = Depends(existing)) -> StoredItem:
    return item


@app.post("/items", response_model=Item)
def create_item(
    data: ItemIn,
    _: str = Depends(require_key),
    store: Store = Depends("store"),
    changes: list[str] = Depends(change_log),
) -> StoredItem:
    item = store.add(data)
    changes.append(f"created {item.id}")
    return item


@app.put("/items/{item_id}", response_model=Item)
async def replace_item(
    item_id: int,
    data: ItemIn,
    _: str = Depends(require_key),
    current: StoredItem = Depends(existing),
    store: Store = Depends("store"),
    changes: list[str] = Depends(change_log),
) -> StoredItem:
    item = StoredItem(id=item_id, supplier_cost=current.supplier_cost, **data.model_dump())
    store.items[item_id] = item
    changes.append(f"replaced {item_id}")
    return item


@app.delete("/items/{item_id}")
def delete_item(
    _: str = Depends(require_key),
    item: StoredItem = Depends(existing),
    store: Store = Depends("store"),
    changes: list[str] = Depends(change_log),
) -> Response:
    del store.items[item.id]
    changes.append(f"deleted {item.id}")
    return Response.no_content()


@app.get("/changes")
def changes(store: Store = Depends("store")) -> dict[str, list[str]]:
    return {"changes": store.changes}


if __name__ == "__main__":
    app.run()
