"""Exceptions raised by Cello and understood by its error handling.

Every class here maps to a precise HTTP response when a handler lets it
escape: ``HTTPException(404)`` becomes a 404 problem, ``BadRequest`` a 400,
and so on. Anything else becomes a logged 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BadRequest",
    "CelloError",
    "ClientDisconnected",
    "HTTPException",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "RequestValidationError",
    "ResponseValidationError",
    "UnsupportedMediaType",
]


class CelloError(Exception):
    """Base class of Cello's own errors."""


class HTTPException(CelloError):
    """Raise to answer with ``status_code`` as an RFC 7807 problem.

    ``detail`` becomes the problem's ``detail`` member and ``headers`` are
    added to the response (``WWW-Authenticate``, ``Retry-After``...).
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not 400 <= status_code <= 599:
            raise ValueError(f"HTTPException needs a 4xx or 5xx status, not {status_code}")
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}" if self.detail else str(self.status_code)


class BadRequest(HTTPException, ValueError):
    """The request could not be decoded (bad JSON, bad UTF-8, a malformed
    typed query or path parameter): 400.

    Also a ``ValueError``, so ``except ValueError`` around ``request.json()``
    keeps working.
    """

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(400, detail)


class NotFound(HTTPException):
    """No route matches the request's path: 404.

    Cello raises it for unknown paths only when an exception handler or a
    Python middleware is there to see it; otherwise the 404 is answered in
    Rust, with the same body.
    """

    def __init__(self, detail: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(404, detail, headers)


class MethodNotAllowed(HTTPException):
    """The path exists, but not for this method: 405, with ``Allow`` in ``headers``."""

    def __init__(self, detail: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(405, detail, headers)


class PayloadTooLarge(HTTPException):
    """The request body is over the configured limit: 413."""

    def __init__(self, detail: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(413, detail, headers)


class RequestTimeout(HTTPException):
    """The request body did not arrive within the body read timeout: 408."""

    def __init__(self, detail: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(408, detail, headers)


class UnsupportedMediaType(HTTPException, ValueError):
    """The body's content type is not one the method reading it understands
    (``request.form()`` on JSON or on multipart/form-data): 415.

    Also a ``ValueError``, like ``BadRequest``: the body cannot be read that way.
    """

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(415, detail)


class RequestValidationError(HTTPException):
    """A handler parameter's value is missing or invalid: 422, whose problem
    ``detail`` is the list of errors, each ``{"type", "loc", "msg", "input"?,
    "ctx"?}`` with ``loc`` starting at ``"path"``, ``"query"``, ``"header"``,
    ``"cookie"`` or ``"body"`` (see docs/validation.md).

    ``errors()`` returns that list; ``app.exception_handler(RequestValidationError)``
    replaces the response.
    """

    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__(422, None)
        self.detail = errors  # type: ignore[assignment]

    def errors(self) -> list[dict[str, object]]:
        return self.detail  # type: ignore[return-value]

    def __str__(self) -> str:
        return f"422: {len(self.errors())} validation error(s): {self.errors()!r}"


class ResponseValidationError(ValueError):
    """A handler returned a value its ``response_model`` does not accept: a
    server bug, so it is logged and answered with a 500."""

    def __init__(self, errors: Sequence[Any], handler: str) -> None:
        super().__init__(f"{handler} returned a value its response model rejects: {errors!r}")
        self._errors = list(errors)

    def errors(self) -> list[Any]:
        return self._errors


class ClientDisconnected(OSError):
    """The client went away before the request or response was complete."""


#: The framework's own refusals, by status: what routing and the body limit
#: raise when an exception handler or a Python middleware must see them.
REFUSALS: dict[int, type[HTTPException]] = {
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    413: PayloadTooLarge,
}


def refusal(status: int, detail: str, headers: Mapping[str, str] | None) -> HTTPException:
    """The exception for one of the framework's refusals (see ``REFUSALS``)."""
    cls = REFUSALS.get(status)
    if cls is None:
        return HTTPException(status, detail, headers)
    return cls(detail, headers)
