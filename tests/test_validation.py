"""JSON bodies validated into pydantic models, the 422/415 problems of bad
bodies, DTOConfig, response models, and overriding the 422, through both doors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, field_validator

from cello import App, DTOConfig, Request, Response
from cello.testing import TestClient
from cello.validation import validate_body
from tests.live import door_client

TARGET = "tests.apps.binding:app"
ITEM = {"name": "hat", "price": 9.5}
INVALID_JSON = [{"loc": ["body"], "msg": "Invalid JSON body", "type": "value_error.json"}]


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, TARGET)


@pytest.fixture(scope="module", params=["native", "asgi"])
def strict_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "tests.apps.binding:strict_app")


def problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def post_raw(client: httpx.Client, path: str, body: bytes, ctype: str | None = None) -> Any:
    headers = {} if ctype is None else {"Content-Type": ctype}
    return client.post(path, content=body, headers=headers)


def test_a_valid_body_becomes_the_model(client: httpx.Client) -> None:
    response = client.post("/items", json={**ITEM, "tags": ["a"]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": "hat", "price": 9.5, "tags": ["a"], "address": None}


def test_body_with_path_and_query_in_an_async_handler(client: httpx.Client) -> None:
    got = client.post("/items/async/3?dry_run=1", json=ITEM).json()
    assert got == {"shelf": 3, "item": {**ITEM, "tags": [], "address": None}, "dry_run": True}


def test_field_errors_are_listed_under_body(client: httpx.Client) -> None:
    body = problem(client.post("/items", json={"name": "hat", "price": -1}))
    assert body["title"] == "Unprocessable Entity" and body["instance"] == "/items"
    assert body["detail"] == [
        {
            "type": "greater_than",
            "loc": ["body", "price"],
            "msg": "Input should be greater than 0",
            "input": -1,
            "ctx": {"gt": 0},
        }
    ]


def test_an_input_json_cannot_carry_back_is_left_out(client: httpx.Client) -> None:
    # 2**70 parses, but the response writer keeps integers to 64 bits: the
    # error list stays a list and only that input is dropped.
    sent = b'{"name": 1180591620717411303424, "price": 1}'
    response = client.post("/items", content=sent, headers={"content-type": "application/json"})
    body = problem(response)
    assert body["detail"] == [
        {"type": "string_type", "loc": ["body", "name"], "msg": "Input should be a valid string"}
    ]


def test_nested_model_errors_have_the_full_location(client: httpx.Client) -> None:
    bad = {**ITEM, "address": {"zip": "123"}, "tags": ["ok", 5]}
    body = problem(client.post("/items", json=bad))
    assert sorted(tuple(e["loc"]) for e in body["detail"]) == [
        ("body", "address", "city"),
        ("body", "address", "zip"),
        ("body", "tags", 1),
    ]


def test_missing_fields(client: httpx.Client) -> None:
    body = problem(client.post("/items", json={}))
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [
        ("missing", ["body", "name"]),
        ("missing", ["body", "price"]),
    ]


@pytest.mark.parametrize(
    "raw", [b"{bad", b'{"name": "hat"', b"\xff\xfe{}", b'{"name":"a","price":1} extra', b"nan"]
)
def test_a_body_that_is_not_json_is_the_documented_error(client: httpx.Client, raw: bytes) -> None:
    assert problem(post_raw(client, "/items", raw, "application/json"))["detail"] == INVALID_JSON


def test_json_of_the_wrong_shape(client: httpx.Client) -> None:
    body = problem(post_raw(client, "/items", b"[1, 2]", "application/json"))
    assert body["detail"][0]["type"] == "model_type" and body["detail"][0]["loc"] == ["body"]


def test_deeply_nested_json_is_refused_not_a_crash(client: httpx.Client) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    assert problem(post_raw(client, "/items", raw, "application/json"))["detail"] == INVALID_JSON


def test_an_empty_body_is_a_missing_body(client: httpx.Client) -> None:
    for raw in (b"", b"  \n"):
        body = problem(post_raw(client, "/items", raw, "application/json"))
        assert body["detail"] == [
            {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
        ]


def test_an_optional_body_may_be_left_out(client: httpx.Client) -> None:
    assert client.post("/items/optional").json() == {"item": None}
    assert client.post("/items/optional", json=ITEM).json()["item"]["name"] == "hat"


def test_a_body_declared_as_another_type_is_a_415(client: httpx.Client) -> None:
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        body = problem(post_raw(client, "/items", b'{"name":"a","price":1}', ctype), 415)
        assert body["detail"] == (
            f"the request body must be JSON (Content-Type: application/json), not {ctype}"
        )


def test_json_content_types_are_accepted(client: httpx.Client) -> None:
    for ctype in (None, "application/json; charset=utf-8", "application/merge-patch+json"):
        assert post_raw(client, "/items", b'{"name":"a","price":1}', ctype).status_code == 200


def test_a_list_of_models(client: httpx.Client) -> None:
    assert client.post("/items/many", json=[ITEM, ITEM]).json() == {"count": 2}
    body = problem(client.post("/items/many", json=[ITEM, {"name": "x"}]))
    assert body["detail"][0]["loc"] == ["body", 1, "price"]


def test_strict_and_forbid_extra_per_route(client: httpx.Client) -> None:
    body = problem(client.post("/items/strict", json={"name": "a", "price": "1"}))
    assert body["detail"][0]["type"] == "float_type"
    body = problem(client.post("/items/strict", json={**ITEM, "color": "red"}))
    assert body["detail"][0]["type"] == "extra_forbidden"
    assert body["detail"][0]["loc"] == ["body", "color"]
    assert client.post("/items/strict", json=ITEM).json()["item"]["name"] == "hat"
    # The lax default turns the numeric string into a float.
    assert client.post("/items", json={"name": "a", "price": "1"}).json()["price"] == 1.0


def test_include_input_and_max_errors(client: httpx.Client) -> None:
    body = problem(client.post("/items/quiet", json={"price": "secret-value"}))
    assert len(body["detail"]) == 1
    assert "input" not in body["detail"][0] and "secret-value" not in str(body)


def test_response_model_filters_the_result(client: httpx.Client) -> None:
    response = client.get("/users/me")
    assert response.json() == {"name": "ada"}
    assert response.headers["content-type"] == "application/json"


def test_a_result_the_response_model_rejects_is_a_500(client: httpx.Client) -> None:
    body = problem(client.get("/users/broken"), 500)
    if "traceback" in body:  # the live server runs in debug mode
        assert body["detail"].startswith("ResponseValidationError: broken_user returned a value")
    else:
        assert body["detail"] == "The server encountered an unexpected error."


def test_a_list_return_annotation_and_a_response_passed_through(client: httpx.Client) -> None:
    assert client.get("/users/list").json() == [{"name": "ada"}, {"name": "grace"}]
    response = client.get("/users/raw")
    assert (response.status_code, response.text) == (202, "as is")


def test_app_wide_config_and_exception_handler(strict_client: httpx.Client) -> None:
    assert strict_client.post("/items", json=ITEM).json() == {"name": "hat"}
    response = strict_client.post("/items", json={**ITEM, "extra": 1})
    assert response.status_code == 400
    assert response.json() == {"invalid": ["body.extra"]}


class Blob(BaseModel):
    data: str


def test_a_body_over_the_limit_is_still_a_413() -> None:
    app = App()
    app.enable_body_limit(100)

    @app.post("/blob")
    def blob(b: Blob, n: int = 0) -> dict[str, int]:
        return {"n": len(b.data)}

    with TestClient(app) as client:
        response = client.post("/blob", json={"data": "x" * 500})
        assert response.status_code == 413


class Note(BaseModel):
    text: str


def test_validate_body_by_hand() -> None:
    app = App()

    @app.post("/notes")
    def create(request: Request) -> dict[str, str]:
        return {"text": validate_body(request, Note).text}

    with TestClient(app) as client:
        assert client.post("/notes", json={"text": "hi"}).json() == {"text": "hi"}
        assert client.post("/notes", json={}).json()["detail"][0]["loc"] == ["body", "text"]
        response = client.post("/notes", content=b"oops", headers={"content-type": "text/plain"})
        assert response.status_code == 415


def test_dto_config_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"DTOConfig\(max_errors=\) must be a positive int"):
        DTOConfig(max_errors=0)
    with pytest.raises(ValueError, match=r"DTOConfig\(strict=\) must be a bool"):
        DTOConfig(strict="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="enable_validation\\(\\) takes a DTOConfig"):
        App().enable_validation({"strict": True})  # type: ignore[arg-type]
    from cello._cello import DTOConfig as Documented

    assert Documented is DTOConfig


def test_setting_the_config_later_rebinds_existing_routes() -> None:
    app = App()

    @app.post("/notes")
    def create(note: Note) -> dict[str, str]:
        return {"text": note.text}

    with TestClient(app) as client:
        assert client.post("/notes", json={"text": "a", "x": 1}).status_code == 200
    app.dto_config = DTOConfig(forbid_extra=True)
    assert app.dto_config.forbid_extra
    with TestClient(app) as client:
        assert client.post("/notes", json={"text": "a", "x": 1}).status_code == 422


class Signup(BaseModel):
    email: str

    @field_validator("email")
    @classmethod
    def needs_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("needs an @")
        return value


def test_a_custom_validator_message_is_kept() -> None:
    app = App()

    @app.post("/signup")
    def signup(data: Signup) -> dict[str, str]:
        return {"email": data.email}

    with TestClient(app) as client:
        (error,) = client.post("/signup", json={"email": "nope"}).json()["detail"]
        assert error == {
            "type": "value_error",
            "loc": ["body", "email"],
            "msg": "Value error, needs an @",
            "input": "nope",
            "ctx": {"error": "needs an @"},
        }


class Lookup:
    """A callable object as a handler, with a positional-only request."""

    def __call__(self, request: Request, /, item_id: int, verbose: bool = False) -> dict:
        return {"item_id": item_id, "verbose": verbose, "method": request.method}


def test_callable_objects_and_positional_only_parameters() -> None:
    app = App()
    app.get("/things/{item_id}")(Lookup())
    with TestClient(app) as client:
        got = client.get("/things/3?verbose=true").json()
        assert got == {"item_id": 3, "verbose": True, "method": "GET"}
        assert client.get("/things/x").status_code == 422


def test_status_code_on_the_route() -> None:
    app = App()

    @app.post("/notes", status_code=201)
    def create(note: Note) -> dict[str, str]:
        return {"text": note.text}

    @app.post("/notes/modelled", status_code=201, response_model=Note)
    async def create_modelled(request: Request) -> dict[str, str]:
        return {"text": "t", "secret": "s"}

    @app.get("/tuple", response_model=Note)
    def as_tuple() -> tuple[dict[str, str], int]:
        return {"text": "t", "secret": "s"}, 202

    @app.get("/nothing", status_code=204)
    def nothing() -> None:
        return None

    @app.get("/own-response", status_code=201)
    def own_response(request: Request) -> Response:
        return Response.text("mine", status=200)

    with TestClient(app) as client:
        response = client.post("/notes", json={"text": "a"})
        assert (response.status_code, response.json()) == (201, {"text": "a"})
        response = client.post("/notes/modelled")
        assert (response.status_code, response.json()) == (201, {"text": "t"})
        response = client.get("/tuple")
        assert (response.status_code, response.json()) == (202, {"text": "t"})
        nothing_response = client.get("/nothing")
        assert nothing_response.status_code == 204
        assert "content-type" not in nothing_response.headers
        assert client.get("/own-response").status_code == 200
    with pytest.raises(ValueError, match=r"status_code must be an HTTP status \(100-599\), not 42"):
        app.get("/x", status_code=42)


def test_status_code_and_response_model_through_the_doors(client: httpx.Client) -> None:
    response = client.post("/items/created", json=ITEM)
    assert (response.status_code, response.json()) == (201, {"name": "hat"})
