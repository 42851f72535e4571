"""Markers that say where a handler parameter comes from.

Without a marker Cello decides from the name and the annotation (see
docs/handlers.md): a name in the route path is a path parameter, a pydantic
model is the JSON body, anything else is a query parameter. A marker says it
explicitly and can rename the parameter on the wire, either as the default
value or inside ``Annotated``::

    def search(q: str = Query("", alias="search", description="Words to find")): ...
    def me(token: Annotated[str, Header(alias="X-Token")]): ...

``...`` (Ellipsis) as the default means required, as in FastAPI.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["Body", "Cookie", "Header", "Path", "Query"]

REQUIRED = inspect.Parameter.empty


# Keyword arguments passed on to pydantic's Field as constraints on the value.
CONSTRAINTS = frozenset(
    {"gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern", "examples"}
)


class ParamMarker:
    """Where a parameter comes from; subclasses fix the source.

    ``gt``, ``ge``, ``lt``, ``le``, ``multiple_of``, ``min_length``,
    ``max_length``, ``pattern`` and ``examples`` constrain the value as
    pydantic's ``Field`` does (``Query(10, ge=1, le=100)``).
    """

    source = ""
    __slots__ = ("alias", "constraints", "default", "description")

    def __init__(
        self,
        default: Any = REQUIRED,
        *,
        alias: str | None = None,
        description: str | None = None,
        **constraints: Any,
    ) -> None:
        name = type(self).__name__
        if alias is not None and (not isinstance(alias, str) or not alias):
            raise ValueError(f"{name}(alias=) must be a non-empty str, not {alias!r}")
        unknown = sorted(set(constraints) - CONSTRAINTS)
        if unknown:
            raise TypeError(f"{name}() got unknown option(s): {', '.join(unknown)}")
        self.default = REQUIRED if default is ... else default
        self.alias = alias
        self.description = description
        self.constraints = constraints

    def __repr__(self) -> str:
        parts = [] if self.default is REQUIRED else [repr(self.default)]
        if self.alias is not None:
            parts.append(f"alias={self.alias!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class Query(ParamMarker):
    """A query-string parameter (``?name=value``); ``list[...]`` collects repeated keys."""

    source = "query"
    __slots__ = ()


class Path(ParamMarker):
    """A ``{name}`` segment of the route path."""

    source = "path"
    __slots__ = ()


class Header(ParamMarker):
    """A request header. Without an alias, ``_`` in the name becomes ``-``
    (``user_agent`` reads ``User-Agent``) unless ``convert_underscores=False``;
    header names are case-insensitive."""

    source = "header"
    __slots__ = ("convert_underscores",)

    def __init__(
        self,
        default: Any = REQUIRED,
        *,
        alias: str | None = None,
        description: str | None = None,
        convert_underscores: bool = True,
        **constraints: Any,
    ) -> None:
        super().__init__(default, alias=alias, description=description, **constraints)
        self.convert_underscores = convert_underscores


class Cookie(ParamMarker):
    """A cookie sent by the client."""

    source = "cookie"
    __slots__ = ()


class Body(ParamMarker):
    """The JSON request body, validated into the annotation (any type
    pydantic understands, not only models)."""

    source = "body"
    __slots__ = ()
