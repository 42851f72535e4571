"""``Depends``: values a handler receives from a provider instead of the request.

Two forms, both bound once at registration (see docs/dependencies.md)::

    app.register_singleton("db", Database(...))

    @app.get("/users/{user_id}")
    def get_user(user_id: int, db=Depends("db"), user=Depends(current_user)): ...

``Depends("db")`` is the value registered under that name with
``app.register_singleton``; ``Depends(callable)`` calls the callable (sync,
async, or a generator whose code after ``yield`` runs after the response),
passing it what it asks for the same way a handler is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SCOPES", "Depends"]

#: "request": once per request (the default); "singleton": once per process;
#: "transient": at every use.
SCOPES = ("request", "singleton", "transient")


class Depends:
    """A parameter default (or ``Annotated`` metadata) naming a dependency.

    ``dependency`` is a registered singleton's name or a callable; None takes
    the parameter's annotation as the callable (``p: Pager = Depends()``).
    ``use_cache=False`` is the same as ``scope="transient"``.
    """

    __slots__ = ("dependency", "scope")

    def __init__(
        self,
        dependency: str | Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: str = "request",
    ) -> None:
        if isinstance(dependency, str):
            if not dependency:
                raise ValueError("Depends() needs a singleton name or a callable, not ''")
        elif dependency is not None and not callable(dependency):
            raise TypeError(
                f"Depends() takes a singleton name or a callable, not {type(dependency).__name__}"
            )
        if scope not in SCOPES:
            raise ValueError(
                f"Depends(scope=) must be 'request', 'singleton' or 'transient', not {scope!r}"
            )
        if not use_cache:
            if scope == "singleton":
                raise ValueError("Depends(use_cache=False) cannot be a singleton")
            scope = "transient"
        self.dependency = dependency
        self.scope = scope

    @property
    def use_cache(self) -> bool:
        return self.scope != "transient"

    def __repr__(self) -> str:
        target = self.dependency
        name = "" if target is None else repr(target) if isinstance(target, str) else _name(target)
        scope = "" if self.scope == "request" else f", scope={self.scope!r}"
        return f"Depends({name}{scope})"


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or repr(target)
