"""Apps for the template tests: ``app`` renders files and strings, with
inheritance, includes, loops, filters, auto-escaping, globals and the CSRF
helpers, and turns template errors into problems."""

from __future__ import annotations

from pathlib import Path

from cello import App, Response
from cello.middleware import CsrfConfig
from cello.templates import Markup

TEMPLATES = Path(__file__).parent / "templates"

app = App()
app.enable_templates(TEMPLATES, globals={"site": "Cello Shop", "year": 2026})
app.enable_csrf(CsrfConfig(secret="templates-secret", cookie_secure=False))

ITEMS = [{"title": "red kite", "price": 12.5}, {"title": "blue hat", "price": 3.333}]


@app.get("/page")
def page(request):
    name = request.query.get("name", "world")
    return app.template_response(
        "page.html",
        {"name": name, "items": ITEMS, "tags": ["a", "b"], "notice": Markup("<em>new</em>")},
    )


@app.get("/async-page")
async def async_page(request):
    html = app.render("page.html", {"name": "async", "items": [], "tags": []}, owner="Ada")
    return Response.html(html, status=201)


@app.get("/note")
def note(request):
    name = request.query.get("name", "world")
    count = int(request.query.get("count", "1"))
    return Response.text(app.render("note.txt", {"name": name, "count": count}))


@app.get("/inline")
def inline(request):
    return Response.html(
        app.render_string("<b>{{ word }}</b>", {"word": request.query.get("word", "")})
    )


@app.get("/form")
def form(request):
    return app.template_response("form.html", {"request": request, "q": request.query.get("q")})


@app.get("/broken")
def broken(request):
    return app.template_response("broken.html")


@app.get("/missing")
def missing(request):
    return app.template_response("no-such-template.html")
