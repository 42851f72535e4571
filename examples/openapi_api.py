"""A documented API: its OpenAPI 3.1 document at /openapi.json, Swagger UI
at /docs and ReDoc at /redoc, all served by the app itself, offline.

The document is built from the handlers: typed path and query parameters,
a header read by a dependency, pydantic bodies and response models, tags,
docstrings, and the API key that guards the librarian's routes.

Run it with::

    python examples/openapi_api.py             # on 127.0.0.1:8000
    uvicorn examples.openapi_api:app           # or under any ASGI server

then open http://127.0.0.1:8000/docs (or /redoc), or::

    curl http://127.0.0.1:8000/openapi.json
    curl 'http://127.0.0.1:8000/books?author=Ursula%20K.%20Le%20Guin'
    curl -X POST http://127.0.0.1:8000/books -H 'Content-Type: application/json' \\
         -d '{"title": "Kindred", "author": "Octavia E. Butler", "year": 1979}'
    curl -X DELETE http://127.0.0.1:8000/admin/books/1 -H 'X-API-Key: librarian-key'
"""

from __future__ import annotations

import threading
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from cello import App, Blueprint, HTTPException, Response
from cello.dependencies import Depends
from cello.guards import Role
from cello.middleware.auth import ApiKeyAuth
from cello.openapi import operation
from cello.params import Header, Query

app = App()
app.enable_openapi(
    title="Bookshelf",
    version="1.0.0",
    description="Books to list, add and read; librarians may remove them.",
    tags=[
        {"name": "books", "description": "The catalogue"},
        {"name": "admin", "description": "For librarians, with their API key"},
    ],
)


def _json_integer(value: object) -> object:
    """What JSON Schema calls an integer: ``1979`` and ``1979.0``, but not
    ``true`` or ``"1979"``, which pydantic's lax mode would coerce."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


class BookIn(BaseModel):
    """A book as a client describes it."""

    # Strict, so that what is accepted is what the document promises: no
    # number where it says a string, no "1979" or true for the year.
    model_config = ConfigDict(strict=True)

    title: str = Field(min_length=1, max_length=200)
    author: str = Field(min_length=1, max_length=100)
    year: Annotated[int, BeforeValidator(_json_integer)] = Field(
        ge=-3000, le=3000, description="Year of first publication"
    )


class Book(BookIn):
    """A book on the shelf."""

    id: int


class Shelf:
    """The books, in memory. It keeps the newest ``capacity`` books, so a
    client adding books forever cannot exhaust the server's memory."""

    def __init__(self, capacity: int = 200) -> None:
        self.capacity = capacity
        self._books: dict[int, Book] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, book: BookIn) -> Book:
        with self._lock:
            stored = Book(id=self._next_id, **book.model_dump())
            self._next_id += 1
            self._books[stored.id] = stored
            while len(self._books) > self.capacity:
                del self._books[next(iter(self._books))]
            return stored

    def get(self, book_id: int) -> Book | None:
        return self._books.get(book_id)

    def remove(self, book_id: int) -> bool:
        with self._lock:
            return self._books.pop(book_id, None) is not None

    def all(self) -> list[Book]:
        with self._lock:
            return list(self._books.values())


SHELF = Shelf()
SHELF.add(BookIn(title="The Dispossessed", author="Ursula K. Le Guin", year=1974))
SHELF.add(BookIn(title="Kindred", author="Octavia E. Butler", year=1979))


def get_shelf() -> Shelf:
    return SHELF


def language(
    accept_language: Annotated[
        str | None, Header(description="Preferred language of titles (informative)")
    ] = None,
) -> str:
    """The client's first preferred language, ``en`` when it states none."""
    first = (accept_language or "en").split(",")[0].split(";")[0].strip()
    return first or "en"


@app.get("/books", tags=["books"])
def list_books(
    author: str | None = None,
    limit: Annotated[int, Field(ge=1, le=100), Query(description="At most this many")] = 20,
    shelf: Shelf = Depends(get_shelf),
    lang: str = Depends(language),
) -> list[Book]:
    """List the books.

    Optionally only those by ``author``, oldest first.
    """
    books = [b for b in shelf.all() if author is None or b.author == author]
    return books[:limit]


@app.get("/books/{book_id}", tags=["books"])
@operation(responses={404: "No book has this id"})
def get_book(book_id: int, shelf: Shelf = Depends(get_shelf)) -> Book:
    """Read one book."""
    book = shelf.get(book_id)
    if book is None:
        raise HTTPException(404, f"No book has the id {book_id}")
    return book


@app.post("/books", tags=["books"], summary="Add a book", response_model=Book, status_code=201)
def add_book(book: BookIn, shelf: Shelf = Depends(get_shelf)) -> Response:
    """The new book, with its id, and its URL in ``Location``."""
    stored = shelf.add(book)
    return Response.created(stored.model_dump(), location=f"/books/{stored.id}")


admin = Blueprint("/admin", tags=["admin"])
admin.use(ApiKeyAuth({"librarian-key": {"name": "librarian", "roles": ["librarian"]}}))


@admin.delete("/books/{book_id}", guards=[Role("librarian")], status_code=204)
@operation(responses={404: "No book has this id"})
def remove_book(book_id: int, shelf: Shelf = Depends(get_shelf)) -> Response:
    """Remove a book from the shelf."""
    if not shelf.remove(book_id):
        raise HTTPException(404, f"No book has the id {book_id}")
    return Response.no_content()


app.register_blueprint(admin)


if __name__ == "__main__":
    app.run()
