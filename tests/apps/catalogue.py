"""A tiny external catalogue for the Bookshelf example's ``/lookup``
(examples/openapi_api.py): ``GET /search?title=...`` answers what it knows
about a title, 404 otherwise, and 200 with a body that is not an entry for
the title "Garbled"."""

from cello import App, HTTPException

app = App()

ENTRIES = {
    "the dispossessed": {"isbn": "978-0-06-051275-4", "publisher": "Harper & Row", "pages": 341},
    "kindred": {"isbn": "978-0-8070-8305-5", "publisher": "Doubleday", "pages": 264},
    "parable of the sower": {
        "isbn": "978-0-941423-99-2",
        "publisher": "Four Walls Eight Windows",
        "pages": 299,
    },
}


@app.get("/search")
def search(title: str) -> dict:
    if title.casefold() == "garbled":
        return {"isbn": 12}
    entry = ENTRIES.get(title.casefold())
    if entry is None:
        raise HTTPException(404, f"no entry for {title!r}")
    return entry
