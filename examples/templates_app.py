"""Templates: a small notes site rendered with Jinja2-syntax templates
(``examples/templates/``): a layout, an include, a macro, loops and
filters, a form protected by CSRF, HTML escaping of what users type, and a
plain-text rendering that is not escaped.

Run it with::

    python examples/templates_app.py           # on 127.0.0.1:8000
    uvicorn examples.templates_app:app         # or under any ASGI server

then open http://localhost:8000/ and add a note such as
``<script>alert(1)</script>``: it shows as text, not as a script. With curl::

    curl http://localhost:8000/notes/0.txt     # the text template, unescaped
"""

from dataclasses import dataclass
from pathlib import Path

import cello
from cello import App, Response
from cello.middleware import CsrfConfig

app = App()
app.enable_templates(
    Path(__file__).parent / "templates",
    globals={"site_name": "Cello Notes", "version": cello.__version__},
)
# cookie_secure=False only so the demo works over plain HTTP on any host.
app.enable_csrf(CsrfConfig(secret="change me: 32 random bytes", cookie_secure=False))


@dataclass
class Note:
    author: str
    text: str


NOTES: list[Note] = [Note("ada", "Templates render in Rust.")]


@app.get("/")
def notes(request):
    return app.template_response("notes.html", {"request": request, "notes": NOTES, "current": "/"})


@app.post("/notes")
def add_note(request):
    form = request.form()
    author, text = form.get("author", "").strip(), form.get("text", "").strip()
    if not author or not text:
        return app.template_response(
            "notes.html", {"request": request, "notes": NOTES, "current": "/"}, status=422
        )
    NOTES.append(Note(author, text))
    return Response.redirect("/", status=303)


@app.get("/notes/{index}.txt")
def note_text(request):
    index = int(request.params["index"]) if request.params["index"].isdigit() else -1
    if not 0 <= index < len(NOTES):
        return Response.text("no such note", status=404)
    return Response.text(app.render("note.txt", note=NOTES[index]))


@app.get("/about")
def about(request):
    return app.template_response("about.html", {"request": request, "current": "/about"})


if __name__ == "__main__":
    app.run()
