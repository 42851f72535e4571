"""Route decorators shared by ``App`` and ``Blueprint``."""

from __future__ import annotations

import dis
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cello.routing import Constraint

F = TypeVar("F", bound=Callable[..., Any])

ConstraintMap = Mapping[str, Constraint | str]

#: The pseudo-method WebSocket routes are registered under in the router: it
#: matches handshakes only, never HTTP requests, and never shows in ``Allow``.
WEBSOCKET = "WEBSOCKET"


@dataclass(frozen=True)
class RouteInfo:
    """One registered route, as listed by ``App.routes`` and ``cello routes``."""

    method: str
    path: str
    handler: Callable[..., Any]
    constraints: ConstraintMap = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    summary: str | None = None
    description: str | None = None
    # This route's request-body limit in bytes; None keeps the app's.
    body_limit: int | None = None
    # Guards run before the handler, its blueprints' first (see cello.guards).
    guards: tuple[Any, ...] = ()
    # What the handler's result is validated and filtered through (a pydantic
    # model or list of them); None: the return annotation's model, if any.
    response_model: Any = None
    # The status of the handler's result when it is not a Response or a
    # (body, status) tuple; None: 200.
    status_code: int | None = None

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))


def check_guards(guards: Any, owner: str = "guards") -> tuple[Callable[[Any], Any], ...]:
    """A route's or blueprint's ``guards=``: a list of guards or one guard."""
    if guards is None:
        return ()
    if callable(guards):
        return (guards,)
    if isinstance(guards, (str, bytes)) or not isinstance(guards, Iterable):
        raise TypeError(f"{owner} must be a list of guards, not {guards!r}")
    out = tuple(guards)
    for guard in out:
        if not callable(guard):
            raise TypeError(f"{owner}: {guard!r} is not a guard (a callable taking the request)")
    return out


def check_body_limit(body_limit: Any, what: str = "body_limit") -> int | None:
    """``body_limit`` as a byte count, or a ValueError saying what is wrong."""
    if body_limit is None:
        return None
    if isinstance(body_limit, bool) or not isinstance(body_limit, int) or body_limit < 0:
        raise ValueError(f"{what} must be a non-negative number of bytes, not {body_limit!r}")
    return body_limit


def check_status_code(status_code: Any) -> None:
    """A route's ``status_code=``: None or an HTTP status, else a ValueError."""
    if status_code is None:
        return
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise ValueError(f"status_code must be an HTTP status (100-599), not {status_code!r}")
    if not 100 <= status_code <= 599:
        raise ValueError(f"status_code must be an HTTP status (100-599), not {status_code}")


def is_async_handler(handler: Callable[..., Any]) -> bool:
    """Whether calling ``handler`` gives an awaitable to await: an ``async
    def``, a ``functools.partial`` of one, a function marked with
    ``inspect.markcoroutinefunction``, or an object with such a ``__call__``."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(type(handler), "__call__", None)  # noqa: B004 - callable objects
    return call is not None and inspect.iscoroutinefunction(call)


# The opcodes of every point where a coroutine can give up control: `await`
# (and the awaits inside `async with` and `async for`) compiles to them.
_SUSPENDING_OPCODES = frozenset(
    {
        "YIELD_VALUE",
        "SEND",
        "GET_AWAITABLE",
        "BEFORE_ASYNC_WITH",
        "GET_AITER",
        "GET_ANEXT",
        "END_ASYNC_FOR",
    }
)


def _own_coroutine_code(handler: Callable[..., Any]) -> Any:
    """The code object that calling ``handler`` runs, if that is an ``async
    def`` body; None for anything else (a partial, a function merely marked
    as a coroutine function, a sync wrapper), whose result Cello cannot see."""
    if inspect.isfunction(handler) or inspect.ismethod(handler):
        func: Any = handler
    else:
        func = getattr(type(handler), "__call__", None)  # noqa: B004 - callable objects
    func = getattr(func, "__func__", func)  # a bound method runs its function's code
    if not inspect.isfunction(func) or not func.__code__.co_flags & inspect.CO_COROUTINE:
        return None
    return func.__code__


def can_suspend(handler: Callable[..., Any]) -> bool:
    """False for an ``async def`` whose own code has no ``await``, ``async
    with`` or ``async for``: it always finishes in one step, so Cello runs it
    like a sync handler instead of as a Task. True when in doubt: whatever
    else returns an awaitable may return one that suspends."""
    code = _own_coroutine_code(handler)
    if code is None:
        return True
    return any(op.opname in _SUSPENDING_OPCODES for op in dis.get_instructions(code))


def takes_request(handler: Callable[..., Any]) -> bool:
    """Whether the handler accepts the request as its first positional argument."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def _check_websocket_handler(handler: Callable[..., Any]) -> None:
    """A WebSocket handler takes the WebSocket as its first positional parameter."""
    name = getattr(handler, "__qualname__", repr(handler))
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot read the WebSocket handler's signature") from exc
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise TypeError(f"{name}: a WebSocket handler takes the WebSocket as first parameter")


class RouteDecorators:
    """``get``/``post``/... on top of one ``_add_route`` hook."""

    def _add_route(self, info: RouteInfo) -> None:
        raise NotImplementedError

    def route(
        self,
        path: str,
        methods: Iterable[str] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        guards: Sequence[Any] | None = None,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers the decorated handler for ``path`` under each of ``methods``
        (default ``["GET"]``) and returns it unchanged. ``body_limit`` (bytes)
        replaces the app's request-body limit for this route, up or down."""
        route_guards = check_guards(guards)
        limit = check_body_limit(body_limit)
        check_status_code(status_code)
        if isinstance(methods, str):
            methods = [methods]
        method_list = [m.upper() for m in (methods or ["GET"])]
        if not method_list:
            raise ValueError("route() needs at least one method")

        def decorator(handler: F) -> F:
            if not callable(handler):
                raise TypeError(f"route handler must be callable, not {type(handler).__name__}")
            for method in method_list:
                self._add_route(
                    RouteInfo(
                        method=method,
                        path=path,
                        handler=handler,
                        constraints=dict(constraints or {}),
                        tags=tuple(tags or ()),
                        summary=summary,
                        description=description,
                        body_limit=limit,
                        guards=route_guards,
                        response_model=response_model,
                        status_code=status_code,
                    )
                )
            return handler

        return decorator

    def websocket(
        self,
        path: str,
        *,
        guards: Sequence[Any] | None = None,
        constraints: ConstraintMap | None = None,
    ) -> Callable[[F], F]:
        """Registers a WebSocket handler for ``path``: ``def h(ws)`` or
        ``async def h(ws)``, optionally taking the handshake ``request``,
        path parameters and ``Depends(...)`` after ``ws``. Guards and
        middleware run on the handshake; a refusal there denies it. See
        docs/websocket.md."""
        route_guards = check_guards(guards)

        def decorator(handler: F) -> F:
            if not callable(handler):
                raise TypeError(f"websocket handler must be callable, not {type(handler).__name__}")
            _check_websocket_handler(handler)
            self._add_route(
                RouteInfo(
                    method=WEBSOCKET,
                    path=path,
                    handler=handler,
                    constraints=dict(constraints or {}),
                    guards=route_guards,
                )
            )
            return handler

        return decorator

    def _method(self, method: str, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, [method], **options)

    def get(
        self,
        path: str,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers a GET handler (HEAD is answered by it automatically)."""
        return self._method(
            "GET",
            path,
            tags=tags,
            summary=summary,
            description=description,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )

    def post(
        self,
        path: str,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers a POST handler."""
        return self._method(
            "POST",
            path,
            tags=tags,
            summary=summary,
            description=description,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )

    def put(
        self,
        path: str,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers a PUT handler."""
        return self._method(
            "PUT",
            path,
            tags=tags,
            summary=summary,
            description=description,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )

    def delete(
        self,
        path: str,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers a DELETE handler."""
        return self._method(
            "DELETE",
            path,
            tags=tags,
            summary=summary,
            description=description,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )

    def patch(
        self,
        path: str,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers a PATCH handler."""
        return self._method(
            "PATCH",
            path,
            tags=tags,
            summary=summary,
            description=description,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )

    def head(
        self,
        path: str,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers an explicit HEAD handler (overrides the automatic one)."""
        return self._method(
            "HEAD",
            path,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )

    def options(
        self,
        path: str,
        guards: Sequence[Any] | None = None,
        *,
        constraints: ConstraintMap | None = None,
        body_limit: int | None = None,
        response_model: Any = None,
        status_code: int | None = None,
    ) -> Callable[[F], F]:
        """Registers an OPTIONS handler."""
        return self._method(
            "OPTIONS",
            path,
            guards=guards,
            constraints=constraints,
            body_limit=body_limit,
            response_model=response_model,
            status_code=status_code,
        )
