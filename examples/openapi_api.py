"""Bookshelf: a documented API, the way a FastAPI user would write it, on
Cello. Its OpenAPI 3.1 document is at /openapi.json, with Swagger UI at
/docs and ReDoc at /redoc, all served by the app itself, offline.

It shows typed path, query and header parameters, pydantic bodies and
response models, tags, and an API-key-guarded blueprint for librarians;
the shelf as a registered singleton (``Depends("shelf")``) and a session
from a generator dependency, closed after the response; a background task
announcing new books; RFC 7807 problems (a duplicate title is a 409); a
multipart cover upload with its own limits, checked by content; an HTML
page rendered from ``examples/templates/`` (escaped); and a lookup in an
external catalogue with ``cello.AsyncClient``.

Run it with::

    python examples/openapi_api.py             # on 127.0.0.1:8000
    uvicorn examples.openapi_api:app           # or under any ASGI server

then open http://127.0.0.1:8000/ (the shelf), /docs or /redoc, or::

    curl 'http://127.0.0.1:8000/books?author=Ursula%20K.%20Le%20Guin'
    curl -X POST http://127.0.0.1:8000/books -H 'Content-Type: application/json' \\
         -d '{"title": "Kindred", "author": "Octavia E. Butler", "year": 1979}'
                                        # 409: Kindred is on the shelf already
    curl http://127.0.0.1:8000/activity # what ran after the responses
    curl -F image=@cover.png http://127.0.0.1:8000/books/1/cover
    curl http://127.0.0.1:8000/books/1/lookup
    curl -X DELETE http://127.0.0.1:8000/admin/books/1 -H 'X-API-Key: librarian-key'

Covers are saved in ``BOOKSHELF_COVERS_DIR`` (default: ``bookshelf-covers``
in the system's temporary directory). ``/lookup`` asks the catalogue at
``BOOKSHELF_CATALOG_URL`` (``GET <url>/search?title=...`` answering
``{"isbn": ..., "publisher": ..., "pages": ...}``), waiting at most
``BOOKSHELF_CATALOG_TIMEOUT`` seconds (5); without a catalogue it is a 503.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from cello import App, AsyncClient, BackgroundTasks, Blueprint, HTTPException, Request, Response
from cello.client import ClientError, ClientTimeout
from cello.dependencies import Depends
from cello.guards import Role
from cello.middleware.auth import ApiKeyAuth
from cello.openapi import operation
from cello.params import Header, Query
from cello.problems import ProblemDetails

app = App()
app.enable_openapi(
    title="Bookshelf",
    version="1.1.0",
    description="Books to list, add and read; librarians may remove them.",
    tags=[
        {"name": "books", "description": "The catalogue"},
        {"name": "admin", "description": "For librarians, with their API key"},
    ],
)
app.enable_templates(Path(__file__).parent / "templates")


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


class Cover(BaseModel):
    """A book's cover as stored."""

    book_id: int
    media_type: str
    size: int


class CatalogueEntry(BaseModel):
    """What the external catalogue knows about a book."""

    isbn: str
    publisher: str
    pages: int


class Activity(BaseModel):
    """What happened after the latest responses."""

    announcements: list[str]
    sessions: list[str]


class Shelf:
    """The books, in memory. It keeps the newest ``capacity`` books, so a
    client adding books forever cannot exhaust the server's memory."""

    def __init__(self, capacity: int = 200) -> None:
        self.capacity = capacity
        self._books: dict[int, Book] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, book: BookIn) -> tuple[Book, bool]:
        """The book stored and ``True``, or the one of the same title and ``False``."""
        with self._lock:
            title = book.title.casefold()
            same = next((b for b in self._books.values() if b.title.casefold() == title), None)
            if same is not None:
                return same, False
            stored = Book(id=self._next_id, **book.model_dump())
            self._next_id += 1
            self._books[stored.id] = stored
            while len(self._books) > self.capacity:
                del self._books[next(iter(self._books))]
            return stored, True

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
app.register_singleton("shelf", SHELF)

# What ran after the responses, newest last (bounded, like the shelf).
ANNOUNCEMENTS: deque[str] = deque(maxlen=50)
SESSIONS: deque[str] = deque(maxlen=50)
_session_numbers = itertools.count(1)


def shelf_session(shelf: Shelf = Depends("shelf")) -> Iterator[Shelf]:
    """A unit of work on the shelf, as a database session would be. The code
    after ``yield`` runs once the response has been sent, and sees the
    handler's exception if it raised."""
    number = next(_session_numbers)
    try:
        yield shelf
    except Exception as error:
        SESSIONS.append(f"session {number} rolled back ({type(error).__name__})")
        raise
    else:
        SESSIONS.append(f"session {number} committed")


async def catalogue_client() -> AsyncIterator[AsyncClient]:
    """One pooled client for the process, closed when the app shuts down."""
    async with AsyncClient(timeout=5.0, headers={"Accept": "application/json"}) as client:
        yield client


def language(
    accept_language: Annotated[
        str | None, Header(description="Preferred language of titles (informative)")
    ] = None,
) -> str:
    """The client's first preferred language, ``en`` when it states none."""
    first = (accept_language or "en").split(",")[0].split(";")[0].strip()
    return first or "en"


def find_book(book_id: int, shelf: Shelf = Depends("shelf")) -> Book:
    """The book named by the path, or a 404 problem."""
    book = shelf.get(book_id)
    if book is None:
        raise HTTPException(404, f"No book has the id {book_id}")
    return book


async def announce(book: Book) -> None:
    """Tell the followers (here: the outbox that /activity shows)."""
    ANNOUNCEMENTS.append(f"New on the shelf: {book.title} by {book.author}")


HTML = {"type": "string"}  # the page, as its document describes it


@app.get("/", summary="The shelf, as a web page")
@operation(responses={200: {"description": "HTML", "content": {"text/html": {"schema": HTML}}}})
def shelf_page(shelf: Shelf = Depends("shelf")) -> Response:
    """Every title is escaped: a book called ``<script>`` shows as text."""
    return app.template_response("bookshelf.html", {"books": shelf.all()})


@app.get("/books", tags=["books"])
def list_books(
    author: str | None = None,
    limit: Annotated[int, Field(ge=1, le=100), Query(description="At most this many")] = 20,
    shelf: Shelf = Depends("shelf"),
    lang: str = Depends(language),
) -> list[Book]:
    """List the books.

    Optionally only those by ``author``, oldest first.
    """
    books = [b for b in shelf.all() if author is None or b.author == author]
    return books[:limit]


@app.get("/books/{book_id}", tags=["books"])
@operation(responses={404: "No book has this id"})
def get_book(book: Book = Depends(find_book)) -> Book:
    """Read one book."""
    return book


@app.post("/books", tags=["books"], summary="Add a book", response_model=Book, status_code=201)
@operation(responses={409: "A book with this title is on the shelf already"})
def add_book(
    book: BookIn, request: Request, tasks: BackgroundTasks, shelf: Shelf = Depends(shelf_session)
) -> Response:
    """The new book, with its id, and its URL in ``Location``. Its
    followers hear of it after the response."""
    stored, new = shelf.add(book)
    if not new:
        raise ProblemDetails(
            type="/problems/duplicate-title",
            title="Duplicate title",
            status=409,
            detail=f"{stored.title!r} is on the shelf already, as book {stored.id}",
            instance=request.path,
            extensions={"existing": f"/books/{stored.id}"},
        )
    tasks.add_task(announce, stored)
    return Response.created(stored.model_dump(), location=f"/books/{stored.id}")


# The handler reads the form itself, so the document is told what it takes.
COVER_FORM = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"image": {"type": "string", "format": "binary"}},
            "required": ["image"],
            "additionalProperties": False,
        },
        "encoding": {"image": {"contentType": "image/png, image/jpeg"}},
    }
}
COVER_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
KiB = 1024


def covers_dir() -> Path:
    """Where covers go: never inside the repository."""
    configured = os.environ.get("BOOKSHELF_COVERS_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "bookshelf-covers"


@app.post("/books/{book_id}/cover", tags=["books"], status_code=201, body_limit=600 * KiB)
@operation(
    openapi_extra={"requestBody": {"required": True, "content": COVER_FORM}},
    responses={
        400: "The form is not one 'image' file",
        404: "No book has this id",
        413: "The image is over 512 KiB, or the form has more than one file",
        415: "The image is not a PNG or a JPEG, or the body is not a form",
    },
)
async def upload_cover(request: Request, book: Book = Depends(find_book)) -> Cover:
    """Upload a book's cover, a PNG or JPEG image of at most 512 KiB."""
    form = await request.form(max_file_size=512 * KiB, max_files=1)
    image = form.get_file("image")
    if image is None or set(form) != {"image"}:
        raise ProblemDetails.bad_request("Send the cover as one file field, 'image'.", request.path)
    # By content: the file name and its Content-Type are the client's claims.
    with image.open() as f:
        head = f.read(8)
    media_type = next((t for magic, t in COVER_TYPES.items() if head.startswith(magic)), None)
    if media_type is None:
        raise ProblemDetails(
            title="Unsupported Media Type",
            status=415,
            detail="A cover must be a PNG or a JPEG image.",
            instance=request.path,
        )
    directory = covers_dir()
    directory.mkdir(parents=True, exist_ok=True)
    image.save(directory / f"{book.id}.{media_type.split('/')[1]}")
    return Cover(book_id=book.id, media_type=media_type, size=image.size())


def catalogue_problem(status: int, title: str, detail: str, request: Request) -> ProblemDetails:
    return ProblemDetails(
        type="/problems/catalogue", title=title, status=status, detail=detail, instance=request.path
    )


@app.get("/books/{book_id}/lookup", tags=["books"])
@operation(
    responses={
        404: "No book has this id, or the catalogue does not know it",
        502: "The catalogue failed",
        503: "No catalogue is configured",
        504: "The catalogue did not answer in time",
    }
)
async def lookup_book(
    request: Request,
    book: Book = Depends(find_book),
    client: AsyncClient = Depends(catalogue_client, scope="singleton"),
) -> CatalogueEntry:
    """What the external catalogue knows about a book."""
    base = os.environ.get("BOOKSHELF_CATALOG_URL")
    if not base:
        raise catalogue_problem(
            503, "No catalogue", "Set BOOKSHELF_CATALOG_URL to look books up.", request
        )
    try:
        answer = await client.get(
            f"{base.rstrip('/')}/search",
            params={"title": book.title},
            timeout=float(os.environ.get("BOOKSHELF_CATALOG_TIMEOUT") or 5),
        )
    except ClientTimeout:
        raise catalogue_problem(504, "Catalogue timeout", "No answer in time.", request) from None
    except ClientError as error:  # ClientConnectionError (refused, reset...), ProtocolError...
        raise catalogue_problem(502, "Catalogue failed", type(error).__name__, request) from None
    if answer.status == 404:
        raise HTTPException(404, f"The catalogue does not know {book.title!r}")
    try:
        if not answer.is_success:
            raise ValueError(f"status {answer.status}")
        return CatalogueEntry.model_validate(answer.json())
    except ValueError as error:  # pydantic's ValidationError too
        detail = f"Unusable answer: {str(error).splitlines()[0]}"
        raise catalogue_problem(502, "Catalogue failed", detail, request) from None


@app.get("/activity", tags=["books"])
def activity() -> Activity:
    """What ran after the latest responses: announcements of new books (a
    background task) and the sessions closed (a generator dependency)."""
    return Activity(announcements=list(ANNOUNCEMENTS), sessions=list(SESSIONS))


admin = Blueprint("/admin", tags=["admin"])
admin.use(ApiKeyAuth({"librarian-key": {"name": "librarian", "roles": ["librarian"]}}))


@admin.delete("/books/{book_id}", guards=[Role("librarian")], status_code=204)
@operation(responses={404: "No book has this id"})
def remove_book(book_id: int, shelf: Shelf = Depends(shelf_session)) -> Response:
    """Remove a book from the shelf."""
    if not shelf.remove(book_id):
        raise HTTPException(404, f"No book has the id {book_id}")
    return Response.no_content()


app.register_blueprint(admin)


if __name__ == "__main__":
    app.run()
