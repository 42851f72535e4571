"""Blueprints: prefixes, nesting, every decorator, registration."""

from __future__ import annotations

import pytest

from cello import App, Blueprint


def test_blueprint_routes_are_served_with_prefixes(client):
    assert client.get("/api/").json() == {"bp": "api"}
    assert client.post("/api/items", json={"n": 1}).json() == {"bp": "api", "created": {"n": 1}}


def test_nested_blueprint(client):
    assert client.get("/api/v1/users/9").json() == {"bp": "v1", "id": "9"}
    assert client.delete("/api/v1/users/9").json() == {"bp": "v1", "deleted": "9"}
    assert client.post("/api/v1/users/9").status_code == 405


def test_prefix_gets_a_leading_slash_and_name_defaults_to_prefix():
    bp = Blueprint("admin")
    assert bp.prefix == "/admin"
    assert bp.name == "/admin"
    assert Blueprint("/x", name="ex").name == "ex"
    with pytest.raises(AttributeError):
        bp.prefix = "/other"  # type: ignore[misc]


def test_get_all_routes_includes_nested_with_full_paths():
    parent, child = Blueprint("/p"), Blueprint("/c")

    @parent.get("/")
    def root(request):
        return None

    @child.route("/r", methods=["PUT", "PATCH"])
    def r(request):
        return None

    @child.head("/h")
    def h(request):
        return None

    @child.options("/o")
    def o(request):
        return None

    parent.register(child)
    assert [(m, p) for m, p, _ in parent.get_all_routes()] == [
        ("GET", "/p/"),
        ("PUT", "/p/c/r"),
        ("PATCH", "/p/c/r"),
        ("HEAD", "/p/c/h"),
        ("OPTIONS", "/p/c/o"),
    ]


def test_register_blueprint_adds_to_app_routes():
    app, bp = App(), Blueprint("/b")

    @bp.put("/x")
    def x(request):
        return None

    app.register_blueprint(bp)
    assert [(r.method, r.path) for r in app.routes] == [("PUT", "/b/x")]


def test_nesting_errors():
    bp = Blueprint("/a")
    with pytest.raises(ValueError, match="inside itself"):
        bp.register(bp)
    child = Blueprint("/b")
    child.register(Blueprint("/c"))
    bp.register(child)
    with pytest.raises(ValueError, match="inside itself"):
        child.register(bp)
    with pytest.raises(TypeError):
        App().register_blueprint("not a blueprint")  # type: ignore[arg-type]
