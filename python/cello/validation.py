"""Request validation: how handler parameters are checked, and the 422 it gives.

Handlers declare what they need (``item_id: int``, ``item: Item``...) and
Cello validates it with pydantic before the handler runs; see
docs/validation.md. This module holds the settings (``DTOConfig``), the
error shape, and ``validate_body`` for handlers that validate by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from cello import _cello
from cello.exceptions import RequestValidationError, ResponseValidationError, UnsupportedMediaType

__all__ = [
    "DTOConfig",
    "RequestValidationError",
    "ResponseValidationError",
    "dto",
    "validate_body",
]

F = TypeVar("F", bound=Callable[..., Any])

INVALID_JSON = {"loc": ["body"], "msg": "Invalid JSON body", "type": "value_error.json"}


@dataclass(frozen=True)
class DTOConfig:
    """How request bodies are validated into models.

    - ``strict`` (False): no coercion in the body (``"5"`` is not an int),
      pydantic's strict mode.
    - ``forbid_extra`` (False): a body with keys the model does not declare is
      a 422 (``extra_forbidden``), whatever the model's own ``extra`` setting.
      It applies to the top-level model; nested models keep theirs.
    - ``max_errors`` (None): at most this many errors in the 422's ``detail``.
    - ``include_input`` (True): each error carries the ``input`` it rejected;
      False leaves it out (the input may echo secrets back).
    """

    strict: bool = False
    forbid_extra: bool = False
    max_errors: int | None = None
    include_input: bool = True

    def __post_init__(self) -> None:
        for name in ("strict", "forbid_extra", "include_input"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DTOConfig({name}=) must be a bool, not {getattr(self, name)!r}")
        limit = self.max_errors
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(
                f"DTOConfig(max_errors=) must be a positive int or None, not {limit!r}"
            )


DEFAULT_DTO_CONFIG = DTOConfig()

# The documented import path is ``cello._cello.DTOConfig``.
_cello.DTOConfig = DTOConfig  # type: ignore[misc]


def dto(config: DTOConfig) -> Callable[[F], F]:
    """Decorator: validates this handler's body with ``config`` instead of the
    app's (put it under the route decorator)::

        @app.post("/items")
        @dto(DTOConfig(strict=True, forbid_extra=True))
        def create(item: Item): ...
    """
    if not isinstance(config, DTOConfig):
        raise TypeError(f"dto() takes a DTOConfig, not {type(config).__name__}")

    def decorator(handler: F) -> F:
        handler.__cello_dto__ = config  # type: ignore[attr-defined]
        return handler

    return decorator


def _jsonable(value: Any) -> bool:
    try:
        # The writer the 422 goes through: it refuses integers beyond 64 bits,
        # lone surrogates and non-str keys, which the json module would pass.
        _cello.dumps(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def error_list(
    errors: Iterable[Any], prefix: tuple[Any, ...], config: DTOConfig
) -> list[dict[str, Any]]:
    """pydantic's errors in the 422 shape: ``loc`` behind ``prefix``, no
    ``url``, ``input`` only when it serialises to JSON, and ``ctx`` values
    that do not (an exception) as their ``str()``."""
    out = []
    for error in errors:
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": [*prefix, *error["loc"]],
            "msg": error["msg"],
        }
        if config.include_input and "input" in error and _jsonable(error["input"]):
            item["input"] = error["input"]
        ctx = error.get("ctx")
        if ctx:
            # A custom validator's ValueError is in ctx["error"]: its message is what helps.
            item["ctx"] = {k: v if _jsonable(v) else str(v) for k, v in ctx.items()}
        out.append(item)
        if config.max_errors is not None and len(out) >= config.max_errors:
            break
    return out


def is_json_content_type(content_type: str | None) -> bool:
    """None (not given), ``application/json`` or any ``*/*+json``, parameters ignored."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        return True
    return media.startswith("application/") and media.endswith("+json")


def check_json_content_type(request: Any) -> None:
    """Refuses a body declared as something other than JSON with a 415: a
    form or ``text/plain`` POST must not be read as JSON (browsers send those
    cross-origin without a preflight)."""
    content_type = request.headers.get("content-type")
    if not is_json_content_type(content_type):
        raise UnsupportedMediaType(
            f"the request body must be JSON (Content-Type: application/json), not {content_type}"
        )


def validate_body(request: Any, model: Any, config: DTOConfig | None = None) -> Any:
    """The request's JSON body validated into ``model`` (a pydantic model or
    any type pydantic accepts), or ``RequestValidationError`` (422) /
    ``UnsupportedMediaType`` (415), as for a body parameter."""
    from pydantic import TypeAdapter, ValidationError

    config = config or DEFAULT_DTO_CONFIG
    check_json_content_type(request)
    raw = request.body()
    if not raw.strip():
        raise RequestValidationError(
            [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    adapter = TypeAdapter(model)
    try:
        return adapter.validate_json(raw, strict=config.strict or None)
    except ValidationError as exc:
        raise RequestValidationError(body_errors(exc, config)) from None


def body_errors(exc: Any, config: DTOConfig) -> list[dict[str, Any]]:
    """A body's ValidationError as the 422 list; a body that is not JSON at all
    is the one documented ``Invalid JSON body`` error."""
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return [dict(INVALID_JSON)]
    return error_list(errors, ("body",), config)
