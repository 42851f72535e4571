"""ProblemDetails on its own (members, validation, JSON, the error kinds)
and returned or raised through both doors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

import cello
from cello import App, HTTPException, ProblemDetails, Response
from cello.problems import PROBLEM_CONTENT_TYPE
from cello.testing import TestClient
from tests.live import door_client


def test_the_documented_defaults() -> None:
    problem = ProblemDetails()
    assert (problem.type_uri, problem.title, problem.status) == (
        "about:blank",
        "Internal Server Error",
        500,
    )
    assert (problem.detail, problem.instance, problem.extensions) == (None, None, {})
    assert (
        problem.to_json() == '{"type":"about:blank","title":"Internal Server Error","status":500}'
    )
    assert cello.ProblemDetails is ProblemDetails


def test_positional_arguments_in_the_documented_order() -> None:
    problem = ProblemDetails("/errors/x", "X happened", 418, "details", "/x/1")
    assert problem.to_dict() == {
        "type": "/errors/x",
        "title": "X happened",
        "status": 418,
        "detail": "details",
        "instance": "/x/1",
    }


def test_members_are_read_write_and_checked() -> None:
    problem = ProblemDetails()
    problem.type_uri = "/errors/custom"
    problem.title = "Custom"
    problem.status = 409
    problem.detail = "why"
    problem.instance = "/things/1"
    assert problem.type == "/errors/custom"
    problem.type = "/errors/other"
    assert problem.type_uri == "/errors/other"
    assert problem.status_code == 409  # HTTPException's name
    assert json.loads(problem.to_json()) == {
        "type": "/errors/other",
        "title": "Custom",
        "status": 409,
        "detail": "why",
        "instance": "/things/1",
    }
    with pytest.raises(ValueError, match="ProblemDetails status must be 4xx or 5xx, not 200"):
        problem.status = 200
    with pytest.raises(TypeError, match="ProblemDetails status must be an int, not str"):
        problem.status = "404"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="ProblemDetails title must be a str, not NoneType"):
        problem.title = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match="ProblemDetails detail must be a str or None, not int"):
        problem.detail = 3  # type: ignore[assignment]
    with pytest.raises(ValueError, match="ProblemDetails status must be 4xx or 5xx, not 99"):
        ProblemDetails(status=99)


def test_type_is_accepted_as_the_keyword_for_type_uri() -> None:
    assert ProblemDetails(type="/errors/a", title="A", status=400).type_uri == "/errors/a"
    with pytest.raises(ValueError, match="a type_uri or a type, not both"):
        ProblemDetails("/errors/a", type="/errors/b")


def test_extensions_take_any_json_value_in_order() -> None:
    problem = (
        ProblemDetails.bad_request("bad")
        .with_extension("errors", [{"field": "name", "message": "required"}])
        .with_extension("count", 2)
        .with_extension("on", date(2026, 1, 2))
    )
    assert problem.to_json() == (
        '{"type":"/errors/bad-request","title":"Bad Request","status":400,"detail":"bad",'
        '"errors":[{"field":"name","message":"required"}],"count":2,"on":"2026-01-02"}'
    )
    problem.with_extension("count", 3)  # replaced in place
    assert list(problem.extensions) == ["errors", "count", "on"]
    assert problem.extensions["count"] == 3
    with pytest.raises(ValueError, match="'status' is a standard problem member"):
        problem.with_extension("status", 1)
    with pytest.raises(TypeError, match="extension member 'x' is not JSON serializable"):
        problem.with_extension("x", object())
    with pytest.raises(TypeError, match="an extension member's name must be a str, not int"):
        problem.with_extension(1, "x")  # type: ignore[arg-type]
    constructed = ProblemDetails(status=400, title="T", extensions={"a": 1})
    assert constructed.extensions == {"a": 1}


@pytest.mark.parametrize(
    ("make", "kind", "status", "title"),
    [
        (ProblemDetails.validation, "validation", 422, "Validation Error"),
        (ProblemDetails.bad_request, "bad-request", 400, "Bad Request"),
        (ProblemDetails.unauthorized, "unauthorized", 401, "Unauthorized"),
        (ProblemDetails.forbidden, "forbidden", 403, "Forbidden"),
        (ProblemDetails.not_found, "not-found", 404, "Not Found"),
        (ProblemDetails.conflict, "conflict", 409, "Conflict"),
        (ProblemDetails.rate_limited, "rate-limited", 429, "Too Many Requests"),
        (ProblemDetails.timeout, "timeout", 504, "Gateway Timeout"),
        (ProblemDetails.internal, "internal", 500, "Internal Server Error"),
    ],
)
def test_the_error_kinds(make, kind, status, title) -> None:
    problem = make("what happened", "/where")
    assert problem.to_dict() == {
        "type": f"/errors/{kind}",
        "title": title,
        "status": status,
        "detail": "what happened",
        "instance": "/where",
    }
    assert make().to_dict() == {"type": f"/errors/{kind}", "title": title, "status": status}


def test_rate_limited_carries_retry_after_as_member_and_header() -> None:
    problem = ProblemDetails.rate_limited("slow down", retry_after=30)
    assert problem.to_dict()["retry_after"] == 30
    response = problem.to_response()
    assert response.status == 429
    assert response.headers["retry-after"] == "30"
    with pytest.raises(ValueError, match="retry_after must be a non-negative number of seconds"):
        ProblemDetails.rate_limited(retry_after=-1)


def test_to_response_is_a_problem_json_response() -> None:
    problem = ProblemDetails.not_found("No such order", "/orders/7")
    response = problem.to_response()
    assert isinstance(response, Response)
    assert response.status == 404
    assert response.content_type() == PROBLEM_CONTENT_TYPE
    assert response.body() == problem.to_json().encode()


def test_it_is_an_http_exception() -> None:
    problem = ProblemDetails.forbidden("no", headers=None)
    assert isinstance(problem, HTTPException)
    assert str(problem) == "403 Forbidden: no"
    assert str(ProblemDetails.forbidden()) == "403 Forbidden"
    assert repr(problem) == (
        'ProblemDetails({"type":"/errors/forbidden","title":"Forbidden","status":403,'
        '"detail":"no"})'
    )
    with pytest.raises(HTTPException):
        raise problem


def test_the_framework_problems_have_the_same_shape() -> None:
    """Cello's own 404 and a ProblemDetails with the same members are the
    same bytes: one shape for every problem the app sends."""
    with TestClient(App()) as client:
        response = client.get("/nowhere")
    same = ProblemDetails(
        title="Not Found", status=404, detail="no route for GET /nowhere", instance="/nowhere"
    )
    assert response.content == same.to_json().encode()


# -- through both doors ----------------------------------------------------------


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "conformance.problems.app:app")


def test_a_returned_problem_is_its_response(client: httpx.Client) -> None:
    response = client.get("/kinds/not-found")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert (
        response.content
        == ProblemDetails.not_found("a not-found problem", "/kinds/not-found").to_json().encode()
    )


def test_a_raised_problem_is_its_response(client: httpx.Client) -> None:
    response = client.get("/raised/timeout")
    assert response.status_code == 504
    assert response.json() == {
        "type": "/errors/timeout",
        "title": "Gateway Timeout",
        "status": 504,
        "detail": "raised timeout",
    }


def test_headers_of_a_problem_reach_the_client(client: httpx.Client) -> None:
    response = client.get("/rate-limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["retry_after"] == 7


def test_an_exception_handler_for_a_problem_class_takes_it(client: httpx.Client) -> None:
    assert client.get("/handled").json()["handled"] is True


def test_a_problem_nested_in_data_is_not_json() -> None:
    app = App()

    @app.get("/")
    def nested(request):
        return {"problem": ProblemDetails()}

    with TestClient(app) as c:
        response = c.get("/")
    assert response.status_code == 500


def test_the_kinds_take_response_headers() -> None:
    problem = ProblemDetails.unauthorized("Log in first", headers={"WWW-Authenticate": "Bearer"})
    assert problem.to_response().headers["www-authenticate"] == "Bearer"
    limited = ProblemDetails.rate_limited(retry_after=5, headers={"X-Limit": "10"})
    assert limited.headers == {"X-Limit": "10", "Retry-After": "5"}
