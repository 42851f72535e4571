"""``ProblemDetails``: an RFC 7807 error a handler returns or raises.

```python
from cello import ProblemDetails

@app.get("/orders/{order_id}")
def order(request):
    order = find(request.params["order_id"])
    if order is None:
        raise ProblemDetails.not_found(f"No order {request.params['order_id']}")
    return order
```

The response is ``application/problem+json`` with the members in the
order Cello's own errors use: ``type``, ``title``, ``status``, then
``detail`` and ``instance`` when set, then the extension members. A
``ProblemDetails`` is also an ``HTTPException``, so exception handlers for
its class, for ``HTTPException`` or for its status code see it when it is
raised. See docs/errors.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cello import _cello
from cello.exceptions import HTTPException
from cello.responses import Response

__all__ = ["PROBLEM_CONTENT_TYPE", "ProblemDetails"]

PROBLEM_CONTENT_TYPE = "application/problem+json"

_STANDARD = ("type", "title", "status", "detail", "instance")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"ProblemDetails {name} must be a str, not {type(value).__name__}")
    return value


def _optional_text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"ProblemDetails {name} must be a str or None, not {type(value).__name__}")
    return value


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ProblemDetails status must be an int, not {type(value).__name__}")
    if not 400 <= value <= 599:
        raise ValueError(f"ProblemDetails status must be 4xx or 5xx, not {value}")
    return value


class ProblemDetails(HTTPException):
    """An RFC 7807 problem: ``type``, ``title``, ``status``, ``detail``,
    ``instance`` and extension members.

    Return it from a handler (it becomes its ``to_response()``), or raise it.
    ``type`` is also accepted as the keyword for ``type_uri``, and
    ``extensions`` and ``headers`` (added to the response) may be given
    at once.
    """

    def __init__(
        self,
        type_uri: str = "about:blank",
        title: str = "Internal Server Error",
        status: int = 500,
        detail: str | None = None,
        instance: str | None = None,
        *,
        type: str | None = None,  # the member's name in RFC 7807
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if type is not None:
            if type_uri != "about:blank":
                raise ValueError("give ProblemDetails a type_uri or a type, not both")
            type_uri = type
        self._status = _status(status)
        super().__init__(self._status, detail, headers)
        self.type_uri = type_uri
        self.title = title
        self.detail = detail
        self.instance = instance
        self._extensions: dict[str, Any] = {}
        for key, value in (extensions or {}).items():
            self.with_extension(key, value)

    # -- the members -----------------------------------------------------------

    @property
    def type_uri(self) -> str:
        """The problem type, a URI reference (``about:blank`` by default)."""
        return self._type_uri

    @type_uri.setter
    def type_uri(self, value: str) -> None:
        self._type_uri = _text("type_uri", value)

    type = type_uri

    @property
    def title(self) -> str:
        return self._title

    @title.setter
    def title(self, value: str) -> None:
        self._title = _text("title", value)

    @property
    def status(self) -> int:
        return self._status

    @status.setter
    def status(self, value: int) -> None:
        self._status = _status(value)

    # ``HTTPException``'s name for it: exception handlers by status read it.
    status_code = status

    @property
    def detail(self) -> str | None:
        return self._detail

    @detail.setter
    def detail(self, value: str | None) -> None:
        self._detail = _optional_text("detail", value)

    @property
    def instance(self) -> str | None:
        return self._instance

    @instance.setter
    def instance(self, value: str | None) -> None:
        self._instance = _optional_text("instance", value)

    @property
    def extensions(self) -> dict[str, Any]:
        """A copy of the extension members, in the order they were added."""
        return dict(self._extensions)

    def with_extension(self, key: str, value: Any) -> ProblemDetails:
        """Adds (or replaces) the extension member ``key``: any JSON value.
        Returns the problem, for chaining."""
        if not isinstance(key, str):
            raise TypeError(f"an extension member's name must be a str, not {type(key).__name__}")
        if key in _STANDARD:
            raise ValueError(
                f"{key!r} is a standard problem member; set the attribute instead of an extension"
            )
        try:
            _cello.dumps(value)
        except TypeError as exc:
            raise TypeError(f"extension member {key!r} is not JSON serializable: {exc}") from None
        self._extensions[key] = value
        return self

    # -- output ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The problem as the JSON object it is sent as."""
        out: dict[str, Any] = {"type": self._type_uri, "title": self._title, "status": self._status}
        if self._detail is not None:
            out["detail"] = self._detail
        if self._instance is not None:
            out["instance"] = self._instance
        out.update(self._extensions)
        return out

    def to_json(self) -> str:
        """The problem as compact JSON, members in the order of ``to_dict``."""
        return self._body().decode()

    def _body(self) -> bytes:
        return _cello.dumps(self.to_dict())

    def to_response(self) -> Response:
        """An ``application/problem+json`` response with the problem's status
        and headers (``Retry-After`` for ``rate_limited``)."""
        return Response(
            self._body(),
            status=self._status,
            headers=self.headers,
            content_type=PROBLEM_CONTENT_TYPE,
        )

    # What the pipeline sends when a handler returns or raises the problem.
    def __cello_response__(self) -> Response:
        return self.to_response()

    def __repr__(self) -> str:
        return f"ProblemDetails({self.to_json()})"

    def __str__(self) -> str:
        shown = f"{self._status} {self._title}"
        return f"{shown}: {self._detail}" if self._detail else shown

    # -- the error kinds ---------------------------------------------------------

    @classmethod
    def _kind(
        cls,
        kind: str,
        status: int,
        title: str,
        detail: str | None,
        instance: str | None,
        headers: Mapping[str, str] | None,
    ) -> ProblemDetails:
        return cls(f"/errors/{kind}", title, status, detail, instance, headers=headers)

    @classmethod
    def validation(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """422, type ``/errors/validation``."""
        return cls._kind("validation", 422, "Validation Error", detail, instance, headers)

    @classmethod
    def bad_request(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """400, type ``/errors/bad-request``."""
        return cls._kind("bad-request", 400, "Bad Request", detail, instance, headers)

    @classmethod
    def unauthorized(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """401, type ``/errors/unauthorized``."""
        return cls._kind("unauthorized", 401, "Unauthorized", detail, instance, headers)

    @classmethod
    def forbidden(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """403, type ``/errors/forbidden``."""
        return cls._kind("forbidden", 403, "Forbidden", detail, instance, headers)

    @classmethod
    def not_found(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """404, type ``/errors/not-found``."""
        return cls._kind("not-found", 404, "Not Found", detail, instance, headers)

    @classmethod
    def conflict(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """409, type ``/errors/conflict``."""
        return cls._kind("conflict", 409, "Conflict", detail, instance, headers)

    @classmethod
    def rate_limited(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        retry_after: int | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """429, type ``/errors/rate-limited``; ``retry_after`` seconds become
        the ``retry_after`` member and the ``Retry-After`` header."""
        problem = cls._kind("rate-limited", 429, "Too Many Requests", detail, instance, headers)
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
                raise ValueError(
                    f"retry_after must be a non-negative number of seconds, not {retry_after!r}"
                )
            problem.with_extension("retry_after", retry_after)
            problem.headers = {**(problem.headers or {}), "Retry-After": str(retry_after)}
        return problem

    @classmethod
    def timeout(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """504, type ``/errors/timeout``."""
        return cls._kind("timeout", 504, "Gateway Timeout", detail, instance, headers)

    @classmethod
    def internal(
        cls,
        detail: str | None = None,
        instance: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemDetails:
        """500, type ``/errors/internal``."""
        return cls._kind("internal", 500, "Internal Server Error", detail, instance, headers)
