"""The app behind the template conformance cases: pages rendered from
``pages/`` (inheritance, loops, escaping), a text template, an inline
template, a template error, and the CSRF helpers, so every door gives the
same bytes and headers."""

from __future__ import annotations

from pathlib import Path

from cello import App, Response
from cello.middleware import CsrfConfig

app = App()
app.enable_templates(Path(__file__).parent / "pages", globals={"site": "Conformance"})
app.enable_csrf(CsrfConfig(secret="conformance-templates", cookie_secure=False))


def _items(request) -> list[str]:
    return request.query.getlist("item")


@app.get("/list")
def listing(request):
    heading = request.query.get("heading", "Items")
    return app.template_response("list.html", {"heading": heading, "items": _items(request)})


@app.get("/plain")
def plain(request):
    heading = request.query.get("heading", "Items")
    return Response.text(app.render("plain.txt", {"heading": heading, "items": _items(request)}))


@app.get("/inline")
def inline(request):
    return Response.html(app.render_string("<p>{{ q }}</p>", q=request.query.get("q", "")))


@app.get("/teapot")
def teapot(request):
    return app.template_response("list.html", {"heading": "Short and stout"}, status=418)


@app.get("/error")
def error(request):
    return app.template_response("missing.html")


@app.get("/csrf")
def csrf(request):
    return Response.html(app.render_string("{{ csrf_meta(request) }}", request=request))
