"""OpenAPI: the document built from the routes (parameters, bodies,
response models, tags, summaries, security), the Swagger UI and ReDoc
pages and their offline assets through both doors, the options and their
errors, and the pages rendered by a headless Chromium."""

from __future__ import annotations

import datetime
import importlib
import inspect
import json
import os
import re
import shutil
import string
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pydantic import BaseModel, create_model

import cello.openapi
from cello import ApiKeyAuth, App, BasicAuth, Blueprint, JwtAuth, JwtConfig, Response
from cello.openapi import operation
from cello.testing import TestClient
from tests.live import LiveServer, door_client

# The installed package's copy: under `make test-abi3` that is the wheel's.
STATIC = Path(cello.openapi.__file__).resolve().parent / "static"
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-init.js": "text/javascript; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "redoc-init.js": "text/javascript; charset=utf-8",
}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "tests.apps.openapi:app", "--env", "production")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from tests.apps.openapi import app

    document = app.openapi()
    validate(document)
    return document


def op(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return spec["paths"][path][method]


def params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", [])}


# -- through the doors ---------------------------------------------------------


def test_the_document_is_served_and_validates(client, spec):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    served = response.json()
    validate(served)
    assert served == spec
    assert served["openapi"] == "3.1.0"


def test_swagger_ui_page_loads_only_its_own_assets(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    page = response.text
    assert "<title>Inventory - Swagger UI</title>" in page
    assert not re.search(r"https?://", page), "the page must load nothing from elsewhere"
    assert "<script>" not in page, "no inline script: the page works under script-src 'self'"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert [s.split("?v=")[0] for s in sources] == [
        "./docs/static/swagger-ui.css",
        "./docs/static/swagger-ui-bundle.js",
        "./docs/static/swagger-ui-init.js",
    ]
    for source in sources:
        assert client.get("/" + source.removeprefix("./")).status_code == 200
    config = json.loads(re.search(r'type="application/json">(.*?)</script>', page).group(1))
    assert config["url"] == "./openapi.json"
    assert config["parameters"]["validatorUrl"] is None


def test_redoc_page_loads_only_its_own_assets(client):
    response = client.get("/redoc")
    assert response.status_code == 200
    page = response.text
    assert "<title>Inventory - ReDoc</title>" in page
    assert not re.search(r"https?://", page)
    assert "fonts.googleapis" not in page
    sources = [s.split("?v=")[0] for s in re.findall(r'src="([^"]+)"', page)]
    assert sources == ["./docs/static/redoc.standalone.js", "./docs/static/redoc-init.js"]


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_assets_are_served_from_the_package_and_cached(client, name):
    response = client.get(f"/docs/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == ASSETS[name]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (STATIC / name).read_bytes()
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = client.get(f"/docs/static/{name}", headers={"if-none-match": f'"x", W/{etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "content-type" not in again.headers
    changed = client.get(f"/docs/static/{name}", headers={"if-none-match": '"other"'})
    assert changed.status_code == 200


def test_the_vendored_viewers_load_nothing_from_other_hosts():
    # A new Swagger UI or ReDoc could bring back what static/README.md removed.
    for name in ASSETS:
        text = (STATIC / name).read_text(encoding="utf-8")
        assert "cdn.redoc.ly" not in text, name
        assert not re.search(r"""src:\s*["']https?://""", text), name
        assert not re.search(r"url\(\s*[\"']?https?://", text), name
        assert "@import" not in text or name.endswith(".js"), name
        assert "sourceMappingURL=" not in text.splitlines()[-1], name


def test_the_asset_version_in_the_page_is_the_content_hash(client):
    page = client.get("/docs").text
    bundle = re.search(r'swagger-ui-bundle\.js\?v=([0-9a-f]+)"', page).group(1)
    etag = client.get("/docs/static/swagger-ui-bundle.js").headers["etag"]
    assert etag.strip('"').startswith(bundle)


def test_unknown_assets_and_pages_are_404(client):
    assert client.get("/docs/static/swagger-ui.js").status_code == 404
    assert client.get("/docs/").status_code == 404


def test_the_auth_middleware_still_guards_the_api(client):
    refused = client.get("/orders")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


# -- the document ----------------------------------------------------------------


@pytest.mark.parametrize("target", ["examples.openapi_api:app", "examples.items_api:app"])
def test_the_example_apis_have_valid_documents(target):
    module, _, attr = target.partition(":")
    document = getattr(importlib.import_module(module), attr).openapi()
    validate(document)
    assert document["paths"]


def test_info_defaults():
    from tests.apps.openapi import bare

    document = bare.openapi()
    validate(document)
    assert document["info"] == {
        "title": "Cello API",
        "version": "1.0.1",
        "description": "Cello API - Powered by Cello Framework",
    }
    assert "servers" not in document


def test_info_and_top_level_tags(spec):
    assert spec["info"]["title"] == "Inventory"
    assert spec["info"]["version"] == "2.0.0"
    assert spec["info"]["description"] == "Inventory - Powered by Cello Framework"
    assert spec["servers"] == [{"url": "/"}]
    assert spec["tags"] == [
        {"name": "items", "description": "What the shop sells"},
        {"name": "orders"},
        {"name": "admin"},
        {"name": "stats"},
    ]


def test_documentation_routes_are_not_described(spec):
    for path in spec["paths"]:
        assert not path.startswith(("/docs", "/redoc", "/openapi.json")), path


def test_summary_and_description(spec):
    listing = op(spec, "get", "/items")
    assert listing["summary"] == "List the items."
    assert listing["description"] == "At most ``limit`` of them, of one ``kind`` if given."
    created = op(spec, "post", "/items")
    assert created["summary"] == "Create an item"
    assert created["description"] == "Adds it to the shop."
    assert "description" not in op(spec, "get", "/items/{item_id}")
    # No docstring and no summary: "METHOD path".
    assert op(spec, "get", "/ping")["summary"] == "GET /ping"
    assert op(spec, "get", "/public/users/{user_id}")["summary"] == "GET /public/users/{user_id}"


def test_operation_ids_are_method_and_function_and_unique(spec):
    ids = [o["operationId"] for p in spec["paths"].values() for o in p.values()]
    assert len(ids) == len(set(ids))
    assert op(spec, "get", "/items")["operationId"] == "get_list_items"
    assert op(spec, "get", "/public/stats")["operationId"] == "get_stats"
    assert op(spec, "get", "/admin/stats")["operationId"] == "get_stats_2"
    assert op(spec, "get", "/orders")["operationId"] == "legacyOrders"


def test_tags_from_routes_and_blueprints(spec):
    assert op(spec, "get", "/items")["tags"] == ["items"]
    assert op(spec, "get", "/admin/stats")["tags"] == ["admin", "stats"]
    assert op(spec, "delete", "/admin/items/{item_id}")["tags"] == ["admin"]
    assert "tags" not in op(spec, "get", "/ping")


def test_path_parameters_are_required_and_typed(spec):
    assert params(op(spec, "get", "/items/{item_id}"))["item_id"] == {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    # From the route's constraints when the handler only takes the request.
    assert params(op(spec, "get", "/public/users/{user_id}"))["user_id"]["schema"] == {
        "type": "string",
        "format": "uuid",
    }
    assert params(op(spec, "delete", "/admin/items/{item_id}"))["item_id"]["schema"] == {
        "type": "integer"
    }
    # The catch-all {*rest} is the template {rest}.
    assert params(op(spec, "get", "/public/files/{rest}"))["rest"] == {
        "name": "rest",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }


def test_query_parameters_with_defaults_and_optional_types(spec):
    found = params(op(spec, "get", "/items"))
    assert found["limit"] == {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "default": 10},
    }
    assert found["kind"]["required"] is False
    assert found["kind"]["schema"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_markers_and_dependencies_give_header_cookie_and_query_parameters():
    from tests.apps.openapi import markers

    document = markers.openapi()
    validate(document)
    found = op(document, "get", "/search/{shelf}")["parameters"]
    # The handler's own first, then its dependencies', each once, depth first;
    # the Depends parameters themselves and the singleton name are not sent.
    assert [(p["in"], p["name"]) for p in found] == [
        ("path", "shelf"),
        ("query", "q"),
        ("cookie", "session_id"),
        ("header", "user-agent"),
        ("header", "X-Token"),
        ("query", "page"),
        ("query", "per_page"),
    ]
    by_name = {p["name"]: p for p in found}
    assert by_name["shelf"]["description"] == "The shelf to search"
    assert by_name["q"] == {
        "name": "q",
        "in": "query",
        "required": True,
        "schema": {"type": "array", "items": {"type": "string"}},
    }
    assert by_name["X-Token"]["required"] is True
    assert by_name["X-Token"]["description"] == "Who is asking"
    assert by_name["user-agent"]["required"] is False
    # pydantic constraints in Annotated[...] reach the schema.
    assert by_name["per_page"]["schema"] == {
        "default": 20,
        "type": "integer",
        "maximum": 100,
        "minimum": 1,
    }


def test_request_body_from_the_pydantic_model(spec):
    body = op(spec, "post", "/items")["requestBody"]
    assert body == {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemIn"}}},
        "required": True,
    }
    item_in = spec["components"]["schemas"]["ItemIn"]
    assert item_in["properties"]["name"]["minLength"] == 1
    assert item_in["properties"]["kind"]["enum"] == ["tool", "part"]
    # Nested models are hoisted into components, never left in $defs.
    assert item_in["properties"]["dimensions"]["anyOf"][0] == {
        "$ref": "#/components/schemas/Dimensions"
    }
    assert "Dimensions" in spec["components"]["schemas"]
    assert "$defs" not in json.dumps(spec)


def test_a_handler_reading_the_request_may_get_any_json_body():
    app = App()

    @app.post("/raw")
    def raw(request: Any) -> dict[str, Any]:
        return request.json()

    @app.put("/typed/{n}")
    def typed(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/read")
    def read(request: Any) -> dict[str, Any]:
        return {}

    @app.patch("/form")
    @operation(
        openapi_extra={
            "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}
        }
    )
    def form(request: Any) -> dict[str, Any]:
        return {}

    document = app.openapi()
    validate(document)
    assert op(document, "post", "/raw")["requestBody"] == {
        "content": {"application/json": {"schema": {}}},
        "required": False,
    }
    # Only a method with a body, and only when the handler can read it.
    assert "requestBody" not in op(document, "put", "/typed/{n}")
    assert "requestBody" not in op(document, "get", "/read")
    assert list(op(document, "patch", "/form")["requestBody"]["content"]) == ["multipart/form-data"]


def test_response_models_in_serialization_mode(spec):
    listing = op(spec, "get", "/items")["responses"]["200"]
    assert listing["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Item"},
    }
    item = spec["components"]["schemas"]["Item"]
    assert item["properties"]["label"]["readOnly"] is True  # a computed field
    created = op(spec, "post", "/items")["responses"]
    assert "200" not in created
    assert created["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item"
    }


def test_the_route_s_status_code_is_the_success_status(spec):
    responses = op(spec, "put", "/items/{item_id}")["responses"]
    assert "200" not in responses
    assert responses["202"]["content"]["application/json"]["schema"] == {"type": "null"}


def test_a_response_annotation_leaves_the_content_open(spec):
    files = op(spec, "get", "/public/files/{rest}")["responses"]["200"]
    assert files == {"description": "Successful Response"}
    assert op(spec, "get", "/ping")["responses"]["200"]["content"] == {
        "application/json": {"schema": {"type": "string"}}
    }


def test_validation_errors_are_documented_where_input_is_validated(spec):
    for method, path in [("get", "/items"), ("post", "/items"), ("get", "/items/{item_id}")]:
        response = op(spec, method, path)["responses"]["422"]
        assert response["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/HTTPValidationError"
        }
    for method, path in [("get", "/ping"), ("get", "/public/users/{user_id}")]:
        assert "422" not in op(spec, method, path)["responses"], path
    problem = spec["components"]["schemas"]["HTTPValidationError"]
    assert problem["required"] == ["type", "title", "status", "detail"]
    assert problem["properties"]["detail"]["items"] == {
        "$ref": "#/components/schemas/ValidationError"
    }
    assert spec["components"]["schemas"]["ValidationError"]["required"] == ["type", "loc", "msg"]
    # A body that is not JSON is refused with a 415.
    assert op(spec, "post", "/items")["responses"]["415"]["content"] == PROBLEM
    assert "415" not in op(spec, "get", "/items")["responses"]


def test_the_documented_422_is_the_one_the_binder_sends(client, spec):
    refused = client.get("/items", params={"limit": "many"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    schemas = spec["components"]["schemas"]
    assert set(body) <= set(schemas["HTTPValidationError"]["properties"])
    assert set(schemas["HTTPValidationError"]["required"]) <= set(body)
    for error in body["detail"]:
        assert set(error) <= set(schemas["ValidationError"]["properties"])
        assert set(schemas["ValidationError"]["required"]) <= set(error)
    assert body["detail"][0]["loc"] == ["query", "limit"]
    unsupported = client.post("/items", content=b"name=x", headers={"content-type": "text/plain"})
    assert unsupported.status_code == 415
    assert unsupported.headers["content-type"] == "application/problem+json"


def test_extra_responses_from_operation(spec):
    assert op(spec, "get", "/items/{item_id}")["responses"]["404"] == {
        "description": "No such item",
        "content": PROBLEM,
    }


def test_security_schemes_from_the_auth_middleware(spec):
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-Admin-Key"},
    }
    # Skipped paths ask for nothing.
    for method, path in [("get", "/items"), ("post", "/items"), ("get", "/ping")]:
        assert "security" not in op(spec, method, path), path
        assert "401" not in op(spec, method, path)["responses"]
    orders = op(spec, "get", "/orders")
    assert orders["security"] == [{"bearerAuth": []}]
    assert orders["responses"]["401"] == {
        "description": "Authentication required",
        "content": PROBLEM,
    }
    # The blueprint's API key and the app's JWT both apply.
    admin = op(spec, "get", "/admin/stats")
    assert admin["security"] == [{"bearerAuth": [], "apiKeyAuth": []}]
    assert admin["responses"]["403"] == {"description": "Access denied", "content": PROBLEM}
    # Guarded, on a skipped path: its guard needs the JWT's user.
    guarded = op(spec, "get", "/public/stats")
    assert guarded["security"] == [{"bearerAuth": []}]
    assert set(guarded["responses"]) == {"200", "401", "403"}


def _security_of(*middleware: Any, path: str = "/x") -> tuple[dict[str, Any], Any]:
    app = App()
    for item in middleware:
        app.use(item)

    @app.get(path)
    def handler(request: Any) -> None:
        return None

    document = app.openapi()
    validate(document)
    return document["components"]["securitySchemes"], op(document, "get", path).get("security")


def test_security_schemes_of_every_auth_middleware():
    secret = "openapi-test-secret-of-32-bytes!"
    custom = JwtAuth(JwtConfig(secret, header_name="X-Token", header_prefix="", cookie_name="jwt"))
    schemes, security = _security_of(custom)
    assert schemes == {
        "jwtHeader": {"type": "apiKey", "in": "header", "name": "X-Token", "description": "A JWT"},
        "jwtCookie": {"type": "apiKey", "in": "cookie", "name": "jwt", "description": "A JWT"},
    }
    # Either the header or the cookie will do.
    assert security == [{"jwtHeader": []}, {"jwtCookie": []}]

    schemes, security = _security_of(
        BasicAuth(lambda user, password: True),
        ApiKeyAuth({"k1": "a"}, header="X-One"),
        ApiKeyAuth({"k2": "b"}, header="X-Two"),
    )
    assert schemes == {
        "basicAuth": {"type": "http", "scheme": "basic"},
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-One"},
        "apiKeyAuth2": {"type": "apiKey", "in": "header", "name": "X-Two"},
    }
    # Every one of them must pass.
    assert security == [{"basicAuth": [], "apiKeyAuth": [], "apiKeyAuth2": []}]


def test_a_skipped_path_below_the_route_leaves_it_covered_and_one_above_frees_it():
    skipping = ApiKeyAuth({"k": "a"}, skip_paths=["/open"])
    assert _security_of(skipping, path="/open/x")[1] is None
    assert _security_of(skipping, path="/opener")[1] == [{"apiKeyAuth": []}]


def test_head_and_options_only_when_registered(spec):
    assert set(spec["paths"]["/ping"]) == {"get", "head"}
    assert set(spec["paths"]["/items"]) == {"get", "post"}
    assert all("options" not in item for item in spec["paths"].values())


def test_operation_marks(spec):
    assert "/internal" not in spec["paths"]
    orders = op(spec, "get", "/orders")
    assert orders["deprecated"] is True
    assert orders["x-internal"] is False


# -- building and caching ----------------------------------------------------------


def test_routes_added_later_are_described_on_the_next_request():
    app = App()
    app.enable_openapi()

    @app.get("/first")
    def first(request: Any) -> dict[str, int]:
        return {}

    with TestClient(app) as client:
        assert list(client.get("/openapi.json").json()["paths"]) == ["/first"]
        blueprint = Blueprint("/later", tags=["late"])

        @blueprint.post("/second")
        def second(request: Any) -> dict[str, int]:
            return {}

        app.register_blueprint(blueprint)
        document = client.get("/openapi.json").json()
        assert list(document["paths"]) == ["/first", "/later/second"]
        assert document["tags"] == [{"name": "late"}]


def test_the_document_is_a_copy():
    from tests.apps.openapi import bare

    bare.openapi()["info"]["title"] = "changed"
    assert bare.openapi()["info"]["title"] == "Cello API"


def test_openapi_works_without_enable_openapi():
    app = App()

    @app.get("/x")
    def x(request: Any) -> None:
        return None

    document = app.openapi()
    validate(document)
    assert list(document["paths"]) == ["/x"]
    assert op(document, "get", "/x")["responses"]["200"]["content"] == {
        "application/json": {"schema": {"type": "null"}}
    }
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 404


def test_models_with_one_name_get_distinct_component_names():
    def make(field: str) -> type[BaseModel]:
        return create_model("Thing", __module__=f"module_{field}", **{field: (int, ...)})

    first, second = make("a"), make("b")
    app = App()

    def one(request: Any) -> Any:
        return {}

    def two(request: Any) -> Any:
        return {}

    # Set by hand: this module's string annotations cannot name locals.
    one.__annotations__["return"] = first
    two.__annotations__["return"] = second
    app.get("/first")(one)
    app.get("/second")(two)

    document = app.openapi()
    validate(document)
    names = sorted(document["components"]["schemas"])
    assert len(names) == 2 and names[0] != names[1]


def test_models_named_like_cello_s_own_schemas_keep_their_names():
    problem = create_model("Problem", mine=(int, ...))
    validation = create_model("ValidationError", mine=(str, ...))
    app = App()
    app.use(ApiKeyAuth({"k": "a"}))

    def handler(request: Any, q: int = 1, body: Any = None) -> Any:
        return {}

    handler.__annotations__.update(body=validation, q=int)
    handler.__annotations__["return"] = problem
    app.post("/p")(handler)
    document = app.openapi()
    validate(document)
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["properties"] == {"mine": {"title": "Mine", "type": "integer"}}
    assert schemas["ValidationError"]["properties"] == {"mine": {"title": "Mine", "type": "string"}}
    responses = op(document, "post", "/p")["responses"]
    assert responses["401"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/CelloProblem"
    }
    assert responses["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/CelloHTTPValidationError"
    }
    assert schemas["CelloHTTPValidationError"]["properties"]["detail"]["items"] == {
        "$ref": "#/components/schemas/CelloValidationError"
    }


def test_an_undescribable_annotation_is_any_value():
    class Opaque:
        pass

    app = App()

    def opaque(request: Any) -> Any:
        return Opaque()

    opaque.__annotations__["return"] = Opaque
    app.get("/opaque")(opaque)

    document = app.openapi()
    validate(document)
    assert op(document, "get", "/opaque")["responses"]["200"]["content"] == {
        "application/json": {"schema": {}}
    }


def test_a_mounted_app_that_describes_itself_joins_the_document():
    from tests.apps.openapi import mounting

    document = mounting.openapi()
    validate(document)
    assert list(document["paths"]) == ["/items/{item_id}", "/legacy/items/{sku}", "/legacy/ping"]
    schemas = document["components"]["schemas"]
    # Both apps have an "Item": the mounted one's is renamed, its $ref follows.
    assert "label" in schemas["Item"]["properties"]
    assert schemas["Item_legacy"]["properties"] == {"sku": {"title": "Sku", "type": "string"}}
    legacy = op(document, "get", "/legacy/items/{sku}")
    assert legacy["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item_legacy"
    }
    assert document["tags"] == [{"name": "items"}, {"name": "legacy"}]
    ids = [o["operationId"] for p in document["paths"].values() for o in p.values()]
    assert len(ids) == len(set(ids))


def test_native_authentication_in_front_of_a_mount_secures_its_operations():
    from tests.apps.openapi import legacy

    app = App()
    app.use(JwtAuth(JwtConfig("openapi-test-secret-of-32-bytes!"), skip_paths=["/legacy/ping"]))
    app.use(BasicAuth(lambda user, password: True))  # Python: mounted apps never see it
    app.mount("/legacy", legacy)
    document = app.openapi()
    validate(document)
    item = op(document, "get", "/legacy/items/{sku}")
    assert item["security"] == [{"bearerAuth": []}]
    assert item["responses"]["401"]["content"]["application/problem+json"]["schema"]["title"] == (
        "Problem"
    )
    assert "security" not in op(document, "get", "/legacy/ping")
    with TestClient(app) as client:
        refused = client.get("/legacy/items/x")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.get("/legacy/ping").json() == {"pong": "legacy"}


def test_a_mounted_app_without_3_1_is_left_out(caplog):
    class Old:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            raise NotImplementedError

        def openapi(self) -> dict[str, Any]:
            return {"openapi": "3.0.2", "info": {}, "paths": {"/x": {}}}

    class Broken(Old):
        def openapi(self) -> dict[str, Any]:
            raise RuntimeError("no")

    app = App()
    app.mount("/old", Old())
    app.mount("/broken", Broken())
    assert app.openapi()["paths"] == {}
    assert "not 3.1; left out" in caplog.text
    assert "failed to describe itself" in caplog.text


# -- options ---------------------------------------------------------------------------


def test_custom_urls_and_escaped_title():
    from tests.apps.openapi import relocated

    with TestClient(relocated) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/api/spec.json").json()["paths"].keys() == {"/api/hello"}
        page = client.get("/api/docs").text
        assert "</script><script>alert(1)" not in page
        assert "Moved &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; - Swagger UI" in page
        config = json.loads(re.search(r'type="application/json">(.*?)</script>', page).group(1))
        assert config["url"] == "./spec.json"
        assert config["parameters"]["docExpansion"] == "none"
        assert '"./docs/static/swagger-ui-bundle.js?v=' in page  # /api/docs/static/...
        assert client.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200
        assert client.get("/api/docs/static/redoc.standalone.js").status_code == 404


def test_without_an_openapi_url_no_route_is_added():
    app = App()
    app.enable_openapi(openapi_url=None)
    assert app.routes == []
    assert app.openapi()["paths"] == {}


def test_enable_openapi_twice_is_an_error():
    app = App()
    app.enable_openapi()
    with pytest.raises(RuntimeError, match="already"):
        app.enable_openapi()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"title": ""}, "title must be a non-empty str"),
        ({"version": 2}, "version must be a non-empty str"),
        ({"docs_url": "docs"}, "docs_url must be a path starting with '/'"),
        ({"openapi_url": "/spec?x"}, "openapi_url must be a path"),
        ({"redoc_url": "/docs"}, "clash"),
        ({"servers": [1]}, "servers takes URLs or dicts"),
        ({"tags": "items"}, "tags must be a list"),
        ({"tags": [{"description": "x"}]}, "tags takes names or dicts"),
        ({"tags": ["a", "a"]}, "names a tag twice"),
        ({"license_info": {"url": "x"}}, "license_info needs a str 'name'"),
        ({"contact": "me"}, "contact must be a dict"),
        ({"swagger_ui_parameters": {"x": object()}}, "swagger_ui_parameters must hold JSON"),
        ({"description": 3}, "description must be a str or None"),
    ],
)
def test_bad_options_name_the_option(options, message):
    app = App()
    with pytest.raises(ValueError, match=re.escape(message)):
        app.enable_openapi(**options)
    assert app.routes == []


def test_an_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        App().enable_openapi(colour="blue")


def test_more_info_options():
    app = App()
    app.enable_openapi(
        summary="Short",
        terms_of_service="/terms",
        contact={"name": "Ops", "email": "ops@example.org"},
        license_info={"name": "MIT", "identifier": "MIT"},
        external_docs={"url": "/guide"},
        servers=[{"url": "/v1", "description": "first"}],
    )
    document = app.openapi()
    validate(document)
    assert document["info"]["summary"] == "Short"
    assert document["info"]["license"] == {"name": "MIT", "identifier": "MIT"}
    assert document["servers"] == [{"url": "/v1", "description": "first"}]
    assert document["externalDocs"] == {"url": "/guide"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"responses": {99: "x"}}, "responses takes HTTP statuses"),
        ({"responses": {"oops": "x"}}, "responses takes HTTP statuses"),
        ({"status_code": "2XX"}, "status_code must be an int"),
        ({"operation_id": ""}, "operation_id must be a non-empty str"),
        ({"openapi_extra": ["x"]}, "openapi_extra must be a dict"),
        ({"openapi_extra": {"x-when": object()}}, "openapi_extra must hold JSON values"),
        ({"responses": [404]}, "responses must be a dict"),
        ({"responses": {404: 3}}, "responses takes a description, a pydantic model"),
        ({"responses": {404: {"description": object()}}}, "responses must hold JSON values"),
    ],
)
def test_bad_operation_marks(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        operation(**options)


def test_extra_responses_of_every_form():
    class Missing(BaseModel):
        reason: str

    app = App()

    @app.get("/things/{name}")
    @operation(
        responses={
            404: Missing,  # a class object, not an annotation: no name to resolve
            "4XX": "Client error",
            302: "Moved",
            "default": {"description": "Anything else"},
        }
    )
    def thing(request: Any) -> Response:
        return Response.text("x")

    document = app.openapi()
    validate(document)
    responses = op(document, "get", "/things/{name}")["responses"]
    assert responses["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Missing"
    }
    assert responses["4XX"] == {"description": "Client error", "content": PROBLEM}
    assert responses["302"] == {"description": "Moved"}
    assert responses["default"] == {"description": "Anything else"}


def test_blueprint_tags_must_be_strings():
    with pytest.raises(TypeError, match="tags"):
        Blueprint("/x", tags="items")


# -- in a browser ------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium is not installed: run `make chromium` (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _rendered(url: str) -> str:
    """The DOM of ``url`` after its scripts ran, as headless Chromium sees
    it. The app serves a strict Content-Security-Policy (``default-src
    'self'``...): a script, style, image, font or request going to another
    host would be blocked and logged on the console, and fails the test."""
    with tempfile.TemporaryDirectory(prefix="cello-chromium-") as profile:
        result = subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    refused = [
        line
        for line in console
        if "Content Security Policy" in line or "Failed to load" in line or "ERR_" in line
    ]
    assert not refused, "\n".join(refused)
    return result.stdout


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.openapi:app", "--env", "production") as server:
        yield server


def test_swagger_ui_renders_the_operations_in_chromium(live, spec):
    dom = _rendered(f"{live.url}/docs")
    rendered = set(re.findall(r'class="opblock-summary-path[^"]*" data-path="([^"]+)"', dom))
    assert rendered == set(spec["paths"]), dom[:2000]
    for path, item in spec["paths"].items():
        for described in item.values():
            assert described["summary"] in dom, (path, described["summary"])
    assert 'class="opblock opblock-post' in dom
    assert 'class="opblock opblock-delete' in dom


def test_redoc_renders_the_operations_in_chromium(live, spec):
    dom = _rendered(f"{live.url}/redoc")
    assert "Inventory" in dom
    for item in spec["paths"].values():
        for described in item.values():
            assert described["summary"] in dom, described["summary"]
    assert "What the shop sells" in dom


def test_the_bookshelf_example_renders_in_chromium():
    """Both pages of examples/openapi_api.py show every operation, the
    multipart cover upload included."""
    from examples.openapi_api import app as bookshelf

    spec = bookshelf.openapi()
    with LiveServer("examples.openapi_api:app", "--env", "production") as server:
        swagger = _rendered(f"{server.url}/docs")
        redoc = _rendered(f"{server.url}/redoc")
    rendered = set(re.findall(r'class="opblock-summary-path[^"]*" data-path="([^"]+)"', swagger))
    assert rendered == set(spec["paths"]), swagger[:2000]
    summaries = [o["summary"] for item in spec["paths"].values() for o in item.values()]
    for summary in summaries:
        assert summary in swagger, summary
        assert summary in redoc, summary
    assert "multipart/form-data" in redoc


# -- any app --------------------------------------------------------------------------

_TYPES = [int, str, float, bool, UUID, datetime.date, list[int], list[str], int | None, Any]
_SEGMENT = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6).map(lambda s: "p" + s)


@st.composite
def _routes(draw: st.DrawFn) -> list[tuple[str, str, list[tuple[str, Any, bool]]]]:
    routes = []
    for index in range(draw(st.integers(1, 4))):
        literal = draw(_SEGMENT)
        names = draw(st.lists(_SEGMENT, max_size=3, unique=True))
        path = f"/r{index}{literal}" + "".join(f"/{{{name}}}" for name in names)
        kind = draw(st.sampled_from(["", ":int", ":uuid"])) if names else ""
        if names and kind:
            path = path.replace(f"{{{names[-1]}}}", f"{{{names[-1]}{kind}}}")
        query = draw(st.lists(_SEGMENT.map(lambda s: "q" + s[1:]), max_size=3, unique=True))
        params = [(name, draw(st.sampled_from(_TYPES)), True) for name in names if not kind]
        params += [(name, draw(st.sampled_from(_TYPES)), draw(st.booleans())) for name in query]
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]))
        routes.append((method, path, params))
    return routes


def _handler(params: list[tuple[str, Any, bool]]) -> Any:
    def handler(**values: Any) -> dict[str, Any]:
        return values

    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=annotation,
            default=inspect.Parameter.empty if required else None,
        )
        for name, annotation, required in params
    ]
    handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    handler.__annotations__ = {name: annotation for name, annotation, _ in params}
    return handler


@given(_routes())
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
def test_any_app_gets_a_valid_document(routes):
    app = App()
    for method, path, params in routes:
        app.route(path, [method], tags=[method.lower()])(_handler(params))
    document = app.openapi()
    validate(document)
    described = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert len(described) == len(routes)


_PATHS = st.lists(
    st.text(alphabet=string.ascii_letters + string.digits + "-_.:~", min_size=1, max_size=5).filter(
        lambda s: s not in (".", "..")
    ),
    min_size=0,
    max_size=4,
).map(lambda segments: "/" + "/".join(segments))


@given(page=_PATHS, target=_PATHS)
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_relative_urls_resolve_to_their_target_from_the_page(page, target):
    from urllib.parse import urljoin

    from cello.openapi.pages import relative_url

    relative = relative_url(page, target)
    assert not relative.startswith("/")
    assert urljoin("http://example.test" + page, relative) == "http://example.test" + target
    # Under a prefix (an ASGI root_path, a proxy) the page still finds it.
    moved = urljoin("http://example.test/prefix" + page, relative)
    assert moved == "http://example.test/prefix" + target
