"""Handler signature analysis (cello._signature): where each parameter comes from."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Optional, get_args

import pytest
from pydantic import BaseModel, Field

from cello import Request
from cello._signature import REQUIRED, Dependency, Param, analyse, path_names
from cello.dependencies import Depends
from cello.params import Body, Cookie, Header, Path, Query


class Item(BaseModel):
    name: str
    price: float


def sources(handler: Any, path: str = "/") -> dict[str, str]:
    return {p.name: p.source for p in analyse(handler, path).params}


def test_path_names_include_the_catch_all() -> None:
    assert path_names("/a/{x}/b/{y}/{*rest}") == {"x", "y", "rest"}
    assert path_names("/static") == frozenset()


def test_request_only_handlers_keep_the_fast_path() -> None:
    def none() -> None: ...
    def positional(request): ...
    def short(req): ...
    def other_name(r): ...
    def annotated(request: Request): ...

    for handler in (none, positional, short, other_name, annotated):
        sig = analyse(handler, "/")
        assert sig.only_request, handler
        assert all(p.source == "request" for p in sig.params)


def test_path_query_and_request_by_name_and_annotation() -> None:
    def get(request, item_id: int, q: str | None = None, limit: int = 10): ...

    sig = analyse(get, "/items/{item_id}")
    assert not sig.only_request
    request, item_id, q, limit = sig.params
    assert (request.source, item_id.source, q.source, limit.source) == (
        "request", "path", "query", "query"
    )  # fmt: skip
    assert item_id.annotation is int and item_id.required
    assert q.default is None and not q.required
    assert limit.default == 10 and limit.wire_name == "limit"


def test_a_lone_annotated_parameter_is_not_the_request() -> None:
    def by_id(item_id: int): ...
    def search(q: str): ...
    def unannotated_path(item_id): ...

    assert sources(by_id, "/items/{item_id}") == {"item_id": "path"}
    assert sources(search) == {"q": "query"}
    assert sources(unannotated_path, "/items/{item_id}") == {"item_id": "path"}


def test_request_annotation_anywhere() -> None:
    def handler(item_id: uuid.UUID, r: Request): ...

    assert sources(handler, "/{item_id}") == {"item_id": "path", "r": "request"}


def test_pydantic_model_is_the_body() -> None:
    def create(item: Item, dry_run: bool = False): ...
    def many(items: list[Item]): ...
    def maybe(item: Optional[Item] = None): ...  # noqa: UP045 - both spellings

    sig = analyse(create, "/items")
    assert sig.body is not None and sig.body.name == "item" and sig.body.annotation is Item
    assert sources(create) == {"item": "body", "dry_run": "query"}
    assert analyse(many, "/").body is not None
    assert analyse(maybe, "/").body.default is None  # type: ignore[union-attr]


def test_two_bodies_are_refused_at_registration() -> None:
    def twice(a: Item, b: Item): ...

    with pytest.raises(TypeError, match="only one parameter can be the request body, not a, b"):
        analyse(twice, "/")


def test_markers_as_defaults_and_in_annotated() -> None:
    def handler(
        q: str = Query("", alias="search", description="words"),
        token: Annotated[str, Header(alias="X-Token")] = "none",
        user_agent: str = Header(None),
        raw_name: str = Header(..., convert_underscores=False),
        session: str = Cookie(...),
        n: Annotated[int, Query(), Field(gt=0)] = 1,
        slug: str = Path(alias="the-slug"),
        payload: dict = Body(...),
    ): ...

    params = {p.name: p for p in analyse(handler, "/{the-slug}").params}
    assert params["q"].source == "query" and params["q"].wire_name == "search"
    assert params["q"].description == "words" and params["q"].default == ""
    assert params["token"].source == "header" and params["token"].wire_name == "X-Token"
    assert params["token"].default == "none"
    assert params["user_agent"].wire_name == "user-agent" and params["user_agent"].default is None
    assert params["raw_name"].wire_name == "raw_name" and params["raw_name"].required
    assert params["session"].source == "cookie" and params["session"].required
    # The marker is taken out of Annotated; the pydantic metadata stays.
    base, field = get_args(params["n"].annotation)
    assert base is int and field.metadata[0].gt == 0
    assert params["slug"].source == "path" and params["slug"].wire_name == "the-slug"
    assert params["payload"].source == "body" and params["payload"].annotation is dict


def get_db():
    yield "db"


async def get_user(request, db=Depends(get_db)):
    return {"db": db}


async def cleanup_async():
    yield 1


class Pager:
    def __init__(self, page: int = 1, size: int = 20) -> None:
        self.page, self.size = page, size


def test_depends_forms_and_nested_dependencies() -> None:
    def handler(
        user=Depends(get_user),
        db=Depends(get_db),
        cache=Depends("cache"),
        pager: Pager = Depends(),
        fresh: Annotated[Any, Depends(get_db, use_cache=False)] = None,
        once=Depends(cleanup_async, scope="singleton"),
    ): ...

    params = {p.name: p for p in analyse(handler, "/").params}
    assert all(p.source == "depends" for p in params.values())
    user = params["user"].dependency
    assert isinstance(user, Dependency)
    assert user.target is get_user and user.is_async and not user.is_generator
    assert [(p.name, p.source) for p in user.params] == [("request", "request"), ("db", "depends")]
    db = params["db"].dependency
    assert db is not None and db.is_generator and not db.is_async and db.scope == "request"
    assert params["cache"].dependency == Dependency("cache", "singleton", (), False, False)
    pager = params["pager"].dependency
    assert pager is not None and pager.target is Pager
    assert [(p.name, p.source, p.default) for p in pager.params] == [
        ("page", "query", 1),
        ("size", "query", 20),
    ]
    assert params["fresh"].dependency.scope == "transient"  # type: ignore[union-attr]
    once = params["once"].dependency
    assert once is not None and once.is_async and once.is_generator and once.scope == "singleton"


def test_walk_visits_each_dependency_once() -> None:
    def a(q: int = 0): ...
    def b(x=Depends(a)): ...
    def handler(item_id: int, one=Depends(b), two=Depends(a)): ...

    names = [p.name for p in analyse(handler, "/{item_id}").walk()]
    assert names == ["item_id", "one", "x", "q", "two"]


def test_dependency_cycles_are_refused() -> None:
    def first(x=None): ...
    def second(y=Depends(first)): ...

    first.__defaults__ = (Depends(second),)
    with pytest.raises(TypeError, match="dependency cycle"):
        analyse(second, "/")


def test_depends_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scope"):
        Depends(get_db, scope="session")
    with pytest.raises(TypeError, match="singleton name or a callable"):
        Depends(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="singleton name"):
        Depends("")
    assert Depends(get_db, use_cache=False).scope == "transient"


def test_response_model_from_the_route_or_the_return_annotation() -> None:
    def returns_item() -> Item: ...
    def returns_items() -> list[Item]: ...
    def returns_dict() -> dict: ...

    assert analyse(returns_item, "/").response_model is Item
    assert analyse(returns_items, "/").response_model == list[Item]
    assert analyse(returns_dict, "/").response_model is None
    assert analyse(returns_dict, "/", response_model=Item).response_model is Item


def test_unresolvable_annotations_are_named() -> None:
    class Local(BaseModel):
        x: int

    def handler(item: Local, q: int = 0): ...

    with pytest.raises(TypeError, match="'Local' of parameter 'item' does not resolve"):
        analyse(handler, "/")


def test_an_unresolvable_annotation_on_the_request_is_tolerated() -> None:
    def handler(request: Missing): ...  # type: ignore[name-defined]  # noqa: F821

    sig = analyse(handler, "/")
    assert sig.only_request


def test_param_properties() -> None:
    param = Param("x", "query", int)
    assert param.required and param.wire_name == "x" and param.default is REQUIRED
    assert Param("x", "query", int, 3, alias="y").wire_name == "y"


def test_blueprint_and_app_decorators_take_response_model() -> None:
    from cello import App, Blueprint

    app = App()
    bp = Blueprint("/bp")

    @app.get("/a", response_model=Item)
    def a(): ...

    @bp.post("/b", response_model=list[Item])
    def b(): ...

    app.register_blueprint(bp)
    models = {r.path: r.response_model for r in app.routes}
    assert models == {"/a": Item, "/bp/b": list[Item]}


def test_constraints_from_markers_and_pydantic_fields() -> None:
    def handler(
        limit: int = Field(10, ge=1, description="how many"),
        q: str = Query("", min_length=2),
        n: int = Field(),
    ): ...

    limit, q, n = analyse(handler, "/").params
    assert limit.default == 10 and limit.description == "how many"
    assert get_args(limit.annotation)[0] is int
    assert q.default == "" and get_args(q.annotation)[1].metadata[0].min_length == 2
    assert n.required


def test_markers_refuse_unknown_options() -> None:
    with pytest.raises(TypeError, match=r"Query\(\) got unknown option\(s\): minimum"):
        Query(1, minimum=0)
    with pytest.raises(ValueError, match=r"Header\(alias=\) must be a non-empty str"):
        Header(alias="")
