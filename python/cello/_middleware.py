"""Middleware registration shared by ``App`` and ``Blueprint``, and the
runner that calls Python middleware around an endpoint.

Two kinds of middleware exist:

- **native** layers (``RequestId``...), which run in Rust on every request
  before routing, in every door, without taking the GIL;
- **Python** middleware: ``async def mw(request, call_next)``, and the
  ``before_request``/``after_request`` hooks built on it. When an app has
  any, each request's endpoint (its handler, or the framework's 404, 405,
  413...) runs inside them.

Native layers are always outside Python middleware. Within each kind,
middleware runs in the order it was registered: the first registered sees
the request first and the response last.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from cello import _cello

__all__ = ["MiddlewareDecorators", "NativeMiddleware", "PythonChain"]

F = TypeVar("F", bound=Callable[..., Any])
CallNext = Callable[[Any], Awaitable[Any]]
HttpMiddleware = Callable[[Any, CallNext], Awaitable[Any]]


@runtime_checkable
class NativeMiddleware(Protocol):
    """A middleware implemented in Rust: it names its layer and options."""

    def _layer(self) -> tuple[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class Entry:
    """One registered middleware; ``prefix`` limits it to a blueprint's paths."""

    prefix: str
    native: NativeMiddleware | None = None
    python: HttpMiddleware | None = None


def _covers(prefix: str, path: str) -> bool:
    if not prefix:
        return True
    return path == prefix or path.startswith(prefix + "/")


class PythonChain:
    """Calls the Python middleware that covers a request around its endpoint.

    The framework's own Python middleware (CSRF, sessions) form a tier of
    their own, outside the app's: they run first, in a fixed order, on
    every path, whenever they were enabled.
    """

    # The framework tier's kinds, outermost first: a forged request is
    # refused before its session is loaded.
    FRAMEWORK_ORDER = ("csrf", "sessions")

    def __init__(self) -> None:
        self._entries: list[tuple[str, HttpMiddleware]] = []
        self._framework: dict[str, HttpMiddleware] = {}
        self._framework_stack: list[HttpMiddleware] = []
        # ``cello._tracing.Tracing`` once telemetry is enabled: outside every
        # middleware, it opens the request's span with the route's template.
        self.tracing: Any = None

    def add(self, prefix: str, middleware: HttpMiddleware) -> None:
        self._entries.append((prefix.rstrip("/"), middleware))

    def set_framework(self, kind: str, middleware: HttpMiddleware) -> None:
        """Installs (or replaces) the framework middleware of ``kind``."""
        if kind not in self.FRAMEWORK_ORDER:
            raise ValueError(f"unknown framework middleware {kind!r}")
        self._framework[kind] = middleware
        self._framework_stack = [
            self._framework[k] for k in self.FRAMEWORK_ORDER if k in self._framework
        ]

    def framework(self, kind: str) -> HttpMiddleware | None:
        return self._framework.get(kind)

    def __bool__(self) -> bool:
        return bool(self._entries) or bool(self._framework) or self.tracing is not None

    async def run(self, request: Any, endpoint: CallNext) -> Any:
        path = request.path
        stack = [*self._framework_stack]
        stack += [mw for prefix, mw in self._entries if _covers(prefix, path)]
        tracing = self.tracing
        if tracing is None:
            return await _call(stack, 0, request, endpoint)
        # The route is read before the endpoint runs (``CallNext.route``).
        route = getattr(endpoint, "route", None)
        return await tracing.around(request, route, lambda: _call(stack, 0, request, endpoint))


async def _call(stack: list[HttpMiddleware], index: int, request: Any, endpoint: CallNext) -> Any:
    if index == len(stack):
        return await endpoint(request)

    def call_next(next_request: Any) -> Awaitable[Any]:
        return _call(stack, index + 1, next_request, endpoint)

    # Whatever a middleware returns (a dict, a tuple...) becomes a Response,
    # so the middleware around it always gets one from ``call_next``.
    return _cello.as_response(await stack[index](request, call_next))


def _before(hook: Callable[[Any], Any]) -> HttpMiddleware:
    async def before_request(request: Any, call_next: CallNext) -> Any:
        early = hook(request)
        if inspect.isawaitable(early):
            early = await early
        if early is not None:
            return early
        return await call_next(request)

    return before_request


def _after(hook: Callable[[Any, Any], Any]) -> HttpMiddleware:
    async def after_request(request: Any, call_next: CallNext) -> Any:
        response = await call_next(request)
        replaced = hook(request, response)
        if inspect.isawaitable(replaced):
            replaced = await replaced
        return response if replaced is None else replaced

    return after_request


def _is_async_callable(obj: Any) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    # An object whose class defines `async def __call__`.
    call = getattr(type(obj), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(call)


def _check_http_middleware(middleware: Any) -> HttpMiddleware:
    if not callable(middleware) or not _is_async_callable(middleware):
        name = getattr(middleware, "__name__", type(middleware).__name__)
        raise TypeError(
            f"HTTP middleware {name!r} must be an `async def mw(request, call_next)` "
            "callable or a native middleware such as RequestId()"
        )
    return middleware  # type: ignore[no-any-return]


class MiddlewareDecorators:
    """``middleware("http")``, ``before_request``, ``after_request`` and ``use``."""

    def _add_middleware(self, entry: Entry) -> None:
        raise NotImplementedError

    def middleware(self, middleware_type: str = "http") -> Callable[[F], F]:
        """Decorator for ``async def mw(request, call_next) -> Response``.

        ``call_next(request)`` runs the rest of the chain and the endpoint and
        returns its ``Response`` (a handler's exception already turned into
        its error response).
        """
        if middleware_type != "http":
            raise ValueError(f"unknown middleware type {middleware_type!r} (only 'http')")

        def decorator(middleware: F) -> F:
            self._add_middleware(Entry("", python=_check_http_middleware(middleware)))
            return middleware

        return decorator

    def before_request(self, hook: F) -> F:
        """Decorator: ``hook(request)`` runs before the endpoint (sync or async).
        Returning anything but None answers the request with it instead."""
        if not callable(hook):
            raise TypeError("before_request() takes a function")
        self._add_middleware(Entry("", python=_before(hook)))
        return hook

    def after_request(self, hook: F) -> F:
        """Decorator: ``hook(request, response)`` runs after the endpoint (sync
        or async) and may return a replacement response; None keeps it."""
        if not callable(hook):
            raise TypeError("after_request() takes a function")
        self._add_middleware(Entry("", python=_after(hook)))
        return hook

    def use(self, middleware: Any) -> Any:
        """Adds a middleware object: a native one (``RequestId()``...) or an
        ``async def mw(request, call_next)`` callable. Returns it, so it also
        works as a decorator."""
        if isinstance(middleware, NativeMiddleware):
            self._add_middleware(Entry("", native=middleware))
        else:
            self._add_middleware(Entry("", python=_check_http_middleware(middleware)))
        return middleware
