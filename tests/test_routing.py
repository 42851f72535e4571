"""Routing through the live native server: priorities, parameters,
constraints, methods, 404/405 problems and automatic HEAD."""

from __future__ import annotations

import uuid

import pytest

from cello import App, Blueprint, RegexConstraint


def problem(response, status):
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    return body


def test_static_beats_parameter_beats_catch_all(client):
    assert client.get("/users/me").json() == {"route": "me"}
    assert client.get("/users/42").json() == {"route": "user", "id": "42"}
    assert client.get("/files/a/b/c.txt").json() == {"route": "files", "path": "a/b/c.txt"}
    assert client.get("/catch/exact").json() == {"route": "exact"}
    assert client.get("/catch/any/thing").json() == {"route": "catch-all", "rest": "any/thing"}


def test_parameters_are_percent_decoded(client):
    assert client.get("/users/J%C3%B6rg%20X").json()["id"] == "Jörg X"


@pytest.mark.parametrize("path", ["/items/12", "/items/-3", "/orders/7"])
def test_int_constraint_accepts_integers(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/items/abc", "/items/1.5", "/orders/x"])
def test_int_constraint_rejects_others_with_404(client, path):
    problem(client.get(path), 404)


def test_uuid_and_regex_constraints(client):
    ident = str(uuid.uuid4())
    assert client.get(f"/uuid/{ident}").json() == {"id": ident}
    problem(client.get("/uuid/not-a-uuid"), 404)
    assert client.get("/slug/hello-world").json() == {"slug": "hello-world"}
    problem(client.get("/slug/Hello"), 404)


def test_route_with_several_methods(client):
    assert client.get("/multi").json() == {"method": "GET"}
    assert client.post("/multi").json() == {"method": "POST"}


def test_every_method_decorator(client):
    assert client.put("/things/1", json={"x": 1}).json() == {
        "method": "PUT",
        "id": "1",
        "body": {"x": 1},
    }
    assert client.patch("/things/1").json() == {"method": "PATCH", "id": "1"}
    assert client.delete("/things/1").status_code == 204
    opts = client.options("/things/1")
    assert opts.status_code == 200
    assert opts.headers["allow"] == "PUT, PATCH, DELETE, OPTIONS"


def test_unknown_path_is_a_404_problem(client):
    body = problem(client.get("/users/1/extra"), 404)
    assert body["title"] == "Not Found"
    assert body["instance"] == "/users/1/extra"


def test_wrong_method_is_405_with_allow(client):
    response = client.post("/users/1")
    body = problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD"
    assert "POST" in body["detail"]
    assert client.put("/multi").headers["allow"] == "GET, HEAD, POST"


def test_head_is_automatic_for_get_routes(client):
    get = client.get("/")
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == "application/json"


def test_explicit_head_route_wins(client):
    head = client.head("/explicit-head")
    assert head.headers["x-head"] == "explicit"


def test_trailing_slash_is_significant(client):
    assert client.get("/trailing/").json() == {"slash": True}
    problem(client.get("/trailing"), 404)


def test_handler_without_request_parameter(client):
    assert client.get("/noargs").json() == {"noargs": True}


class TestRegistrationErrors:
    """Mistakes in route definitions fail at decoration time, with the reason."""

    def test_duplicate_route(self):
        app = App()
        app.get("/a")(lambda r: None)
        with pytest.raises(ValueError, match="already registered"):
            app.get("/a")(lambda r: None)

    def test_conflicting_parameter_names(self):
        app = App()
        app.get("/a/{id}")(lambda r: None)
        with pytest.raises(ValueError, match="conflicts"):
            app.get("/a/{name}")(lambda r: None)

    def test_path_without_slash(self):
        with pytest.raises(ValueError, match="must start with '/'"):
            App().get("nope")(lambda r: None)

    def test_unknown_inline_type(self):
        with pytest.raises(ValueError, match="unknown path parameter type"):
            App().get("/a/{x:float}")(lambda r: None)

    def test_constraint_for_missing_parameter(self):
        with pytest.raises(ValueError, match="names no parameter"):
            App().get("/a/{x}", constraints={"y": "int"})(lambda r: None)

    def test_invalid_regex(self):
        with pytest.raises(ValueError, match="invalid constraint regex"):
            App().get("/a/{x}", constraints={"x": RegexConstraint("(")})(lambda r: None)

    def test_bad_constraint_type(self):
        with pytest.raises(TypeError, match=r"must be a cello\.routing constraint"):
            App().get("/a/{x}", constraints={"x": 3})(lambda r: None)

    def test_guards_are_kept_on_the_route_and_must_be_callables(self):
        # Their behaviour is tests/test_guards.py's.
        app = App()
        allow = lambda r: True  # noqa: E731
        app.get("/a", guards=[allow])(lambda r: None)
        assert app.routes[0].guards == (allow,)
        with pytest.raises(TypeError, match="guard"):
            App().get("/a", guards=["admin"])
        with pytest.raises(TypeError, match="guard"):
            Blueprint("/x", guards=[3])

    def test_bad_method_name(self):
        with pytest.raises(ValueError, match="invalid HTTP method"):
            App().route("/a", methods=["GE T"])(lambda r: None)

    def test_non_callable_handler(self):
        with pytest.raises(TypeError, match="callable"):
            App().get("/a")("not a function")


def test_routes_listing():
    app = App()

    @app.route("/x", methods=["GET", "POST"])
    def x(request):
        return None

    assert [(r.method, r.path, r.name) for r in app.routes] == [
        ("GET", "/x", "test_routes_listing.<locals>.x"),
        ("POST", "/x", "test_routes_listing.<locals>.x"),
    ]
