"""Handler parameters bound from the request through both doors: path
parameters converted to their annotation, query parameters with defaults and
repeated keys, headers and cookies, and a 422 problem listing every bad value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cello import App, Depends
from tests.live import door_client

TARGET = "tests.apps.binding:app"
UID = "12345678-1234-5678-1234-567812345678"


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, TARGET)


def problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    return body


def test_path_and_query_parameters_are_converted(client: httpx.Client) -> None:
    assert client.get("/items/42").json() == {"item_id": 42, "q": None, "limit": 10}
    assert client.get("/items/42?q=hat&limit=3").json() == {"item_id": 42, "q": "hat", "limit": 3}


def test_a_bad_path_parameter_is_a_422_naming_it(client: httpx.Client) -> None:
    body = problem(client.get("/items/forty-two"))
    assert body["title"] == "Unprocessable Entity"
    assert body["instance"] == "/items/forty-two"
    assert body["detail"] == [
        {
            "type": "int_parsing",
            "loc": ["path", "item_id"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": "forty-two",
        }
    ]


def test_inline_constrained_path_parameters_bind_by_name(client: httpx.Client) -> None:
    # `{shelf_id:int}` names the parameter `shelf_id`, not `shelf_id:int`.
    assert client.get("/shelves/7/garden?q=x").json() == {"shelf_id": 7, "slug": "garden", "q": "x"}
    # The constraint refuses before binding: no route, not a 422.
    assert client.get("/shelves/seven/garden").status_code == 404
    assert client.get("/shelves/7/g4rden").status_code == 404


def test_every_bad_value_is_listed_at_once(client: httpx.Client) -> None:
    body = problem(client.get("/items/x?limit=many"))
    assert [e["loc"] for e in body["detail"]] == [["path", "item_id"], ["query", "limit"]]


def test_uuid_enum_float_and_bool_path_parameters(client: httpx.Client) -> None:
    assert client.get(f"/typed/{UID}/blue/2/0.25/on").json() == {
        "uid": UID,
        "color": "blue",
        "level": 2,
        "ratio": 0.25,
        "flag": True,
    }
    body = problem(client.get("/typed/nope/green/3/x/maybe"))
    assert [(e["loc"][1], e["type"]) for e in body["detail"]] == [
        ("uid", "uuid_parsing"),
        ("color", "enum"),
        ("level", "enum"),
        ("ratio", "float_parsing"),
        ("flag", "bool_parsing"),
    ]
    assert body["detail"][1]["ctx"] == {"expected": "'red' or 'blue'"}


def test_a_huge_integer_is_a_422_not_a_crash(client: httpx.Client) -> None:
    body = problem(client.get("/items/" + "9" * 5000))
    assert body["detail"][0]["loc"] == ["path", "item_id"]


def test_missing_required_query_parameter(client: httpx.Client) -> None:
    body = problem(client.get("/search"))
    assert body["detail"] == [
        {"type": "missing", "loc": ["query", "q"], "msg": "Field required", "input": None}
    ]


def test_repeated_keys_fill_lists_and_aliases_rename(client: httpx.Client) -> None:
    got = client.get("/search?q=a&tag=x&tag=y&ids=1&ids=2&page=3").json()
    assert got == {"q": "a", "tags": ["x", "y"], "ids": [1, 2], "page": 3}
    assert client.get("/search?q=a").json() == {"q": "a", "tags": [], "ids": None, "page": 1}
    body = problem(client.get("/search?q=a&ids=1&ids=two"))
    assert body["detail"][0]["loc"] == ["query", "ids", 1]


def test_annotated_constraints_apply_to_query_parameters(client: httpx.Client) -> None:
    body = problem(client.get("/search?q=a&page=0"))
    assert body["detail"] == [
        {
            "type": "greater_than_equal",
            "loc": ["query", "page"],
            "msg": "Input should be greater than or equal to 1",
            "input": "0",
            "ctx": {"ge": 1},
        }
    ]


def test_headers_and_cookies(client: httpx.Client) -> None:
    got = client.get(
        "/whoami", headers={"User-Agent": "probe/1", "X-Token": "t0k", "Cookie": "session=s1"}
    ).json()
    assert got == {"ua": "probe/1", "token": "t0k", "session": "s1", "path": "/whoami"}
    got = client.get("/whoami").json()
    assert got["token"] == "" and got["session"] is None


def test_catch_all_path_parameter(client: httpx.Client) -> None:
    assert client.get("/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}


def test_handlers_taking_nothing_or_the_request_are_unchanged(client: httpx.Client) -> None:
    assert client.get("/nothing").json() == {"nothing": True}
    assert client.get("/only-request").json() == {"method": "GET"}


def test_guards_run_before_binding(client: httpx.Client) -> None:
    assert client.get("/guarded/1").status_code == 403
    # A refused request is not validated: the guard answers first.
    assert client.get("/guarded/x").status_code == 403
    assert client.get("/guarded/7", headers={"X-Key": "open"}).json() == {"n": 7}
    problem(client.get("/guarded/x", headers={"X-Key": "open"}))


def test_blueprint_routes_bind_too(client: httpx.Client) -> None:
    assert client.get("/shop/orders/9?expand=yes").json() == {"order_id": 9, "expand": True}
    problem(client.get("/shop/orders/nine"))


# -- registration-time errors ------------------------------------------------------


class NotAType:
    pass


def test_an_unusable_signature_fails_at_registration() -> None:
    app = App()
    with pytest.raises(TypeError, match="cannot validate parameter 'x'"):

        @app.get("/x")
        def handler(x: NotAType): ...


def test_a_dependency_cycle_fails_at_registration() -> None:
    app = App()

    def first(value: int = 0) -> int:
        return value

    def second(value: int = Depends(first)) -> int:
        return value

    first.__defaults__ = (Depends(second),)
    with pytest.raises(TypeError, match="dependency cycle"):

        @app.get("/x")
        def handler(v: int = Depends(second)): ...


def test_register_singleton_checks_the_name() -> None:
    with pytest.raises(ValueError, match="register_singleton\\(\\) name must be a non-empty str"):
        App().register_singleton("", object())
