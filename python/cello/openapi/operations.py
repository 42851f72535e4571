"""``@operation(...)``: what the route decorators cannot say about an
operation in the spec (its other responses, its status, whether it is
listed at all)."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["OperationDoc", "operation", "operation_doc"]

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__cello_openapi__"


@dataclass(frozen=True)
class OperationDoc:
    """What ``@operation`` recorded on a handler."""

    responses: Mapping[int | str, Any] = field(default_factory=dict)
    status_code: int | None = None
    include_in_schema: bool = True
    deprecated: bool = False
    operation_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _check_status(status: Any, option: str) -> int | str:
    if status == "default":
        return "default"
    if (
        isinstance(status, str)
        and len(status) == 3
        and status[0] in "12345"
        and (status[1:] == "XX" or status.isdigit())
    ):
        return status
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(
            f"operation() {option} takes HTTP statuses (100-599, '4XX' or 'default'), "
            f"not {status!r}"
        )
    return status


def _check_json(value: Mapping[str, Any], option: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"operation() {option} must hold JSON values: {error}") from None


def operation(
    *,
    responses: Mapping[int | str, Any] | None = None,
    status_code: int | None = None,
    include_in_schema: bool = True,
    deprecated: bool = False,
    operation_id: str | None = None,
    openapi_extra: Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Decorator documenting a handler's operation beyond what the route says.

    - ``responses``: more responses, by status (``404``, ``"4XX"``,
      ``"default"``): a description string (the body is then a problem,
      ``application/problem+json``), a pydantic model or type (a JSON body of
      that schema), or a whole OpenAPI Response Object (a dict).
    - ``status_code``: the status of the successful response (default 200).
    - ``include_in_schema=False`` leaves the route out of the spec.
    - ``deprecated`` marks the operation deprecated; ``operation_id``
      replaces the generated ``<method>_<function>`` id.
    - ``openapi_extra``: keys merged into the Operation Object as they are
      (``x-`` extensions, ``externalDocs``...).

    It may sit above or below the route decorator; it returns the handler
    unchanged.
    """
    if responses is not None and not isinstance(responses, Mapping):
        raise ValueError(
            f"operation() responses must be a dict of status -> response, not {responses!r}"
        )
    checked: dict[int | str, Any] = {}
    for status, response in (responses or {}).items():
        if isinstance(response, Mapping):
            _check_json(response, "responses")
        elif not isinstance(response, (str, type)) and typing.get_origin(response) is None:
            raise ValueError(
                "operation() responses takes a description, a pydantic model or type, "
                f"or a Response Object (a dict), not {response!r}"
            )
        checked[_check_status(status, "responses")] = response
    if status_code is not None:
        _check_status(status_code, "status_code")
        if isinstance(status_code, str):
            raise ValueError(f"operation() status_code must be an int, not {status_code!r}")
    if operation_id is not None and (not isinstance(operation_id, str) or not operation_id):
        raise ValueError(f"operation() operation_id must be a non-empty str, not {operation_id!r}")
    if openapi_extra is not None:
        if not isinstance(openapi_extra, Mapping):
            raise ValueError(f"operation() openapi_extra must be a dict, not {openapi_extra!r}")
        _check_json(openapi_extra, "openapi_extra")
    doc = OperationDoc(
        responses=checked,
        status_code=status_code,
        include_in_schema=bool(include_in_schema),
        deprecated=bool(deprecated),
        operation_id=operation_id,
        extra=dict(openapi_extra or {}),
    )

    def decorator(handler: F) -> F:
        try:
            setattr(handler, _ATTRIBUTE, doc)
        except (AttributeError, TypeError):
            raise TypeError(
                f"operation() cannot mark {handler!r}: it takes no attributes"
            ) from None
        return handler

    return decorator


def operation_doc(handler: Any) -> OperationDoc:
    """What ``@operation`` said about ``handler``, or the defaults."""
    doc = getattr(handler, _ATTRIBUTE, None)
    return doc if isinstance(doc, OperationDoc) else OperationDoc()
