"""Blueprints: groups of routes under a common prefix, nestable.

Paths join by plain concatenation, so ``Blueprint("/users")`` with
``@bp.get("/")`` serves ``/users/`` (trailing slashes are significant).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from cello._middleware import Entry, MiddlewareDecorators
from cello._routes import RouteDecorators, RouteInfo, check_guards

__all__ = ["Blueprint"]


class Blueprint(RouteDecorators, MiddlewareDecorators):
    """A prefix plus the routes, middleware and child blueprints registered on it.

    Middleware added to a blueprint (``bp.use(...)``, ``@bp.middleware("http")``,
    ``@bp.before_request``...) covers the requests whose path is the
    blueprint's prefix or below it, known routes or not.
    """

    def __init__(
        self,
        prefix: str,
        name: str | None = None,
        guards: Sequence[Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> None:
        self._guards = check_guards(guards)
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags or ()):
            raise TypeError(f"Blueprint tags must be a list of str, not {tags!r}")
        # OpenAPI tags put in front of each route's own (see cello.openapi).
        self._tags = tuple(tags or ())
        if not isinstance(prefix, str):
            raise TypeError("Blueprint prefix must be a str")
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        self._prefix = prefix
        self._name = name if name is not None else prefix
        self._routes: list[RouteInfo] = []
        self._middleware: list[Entry] = []
        self._children: list[Blueprint] = []

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def name(self) -> str:
        return self._name

    def _add_route(self, info: RouteInfo) -> None:
        self._routes.append(info)

    def _add_middleware(self, entry: Entry) -> None:
        self._middleware.append(entry)

    def register(self, child: Blueprint) -> None:
        """Nests ``child``: its routes get this blueprint's prefix in front of its own."""
        if not isinstance(child, Blueprint):
            raise TypeError(f"register() takes a Blueprint, not {type(child).__name__}")
        if child is self or self in child._descendants():
            raise ValueError("a blueprint cannot be nested inside itself")
        self._children.append(child)

    register_blueprint = register

    def _descendants(self) -> list[Blueprint]:
        found: list[Blueprint] = []
        for child in self._children:
            found.append(child)
            found.extend(child._descendants())
        return found

    def routes(self) -> list[RouteInfo]:
        """Every route with its full path, nested blueprints included."""
        out = [self._own(r) for r in self._routes]
        for child in self._children:
            out.extend(self._own(r) for r in child.routes())
        return out

    def _own(self, info: RouteInfo) -> RouteInfo:
        """``info`` under this blueprint: its prefix, guards and tags go in front."""
        tags = self._tags + tuple(t for t in info.tags if t not in self._tags)
        return replace(
            info, path=self._prefix + info.path, guards=self._guards + info.guards, tags=tags
        )

    @property
    def guards(self) -> tuple[Any, ...]:
        """The guards every route of this blueprint (nested ones included) runs."""
        return self._guards

    def _middleware_entries(self) -> list[Entry]:
        """Every middleware with the full prefix it covers, nested blueprints included."""
        out = [replace(e, prefix=self._prefix + e.prefix) for e in self._middleware]
        for child in self._children:
            out.extend(
                replace(e, prefix=self._prefix + e.prefix) for e in child._middleware_entries()
            )
        return out

    def get_all_routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        """``(method, full_path, handler)`` for every route."""
        return [(r.method, r.path, r.handler) for r in self.routes()]

    def __repr__(self) -> str:
        return f"Blueprint(prefix={self._prefix!r}, name={self._name!r})"
