"""Guards: role- and permission-based access control for routes.

A guard is a callable ``guard(request)`` (sync or ``async``) that runs after
the middleware (so authentication has put the user in ``request.context``)
and before the handler. It passes by returning None or True; it refuses by
returning False (403 "Access denied"), by returning a str (403 with that
message) or by raising a ``GuardError``. Any other exception refuses with
403 "Guard error: <exception>": a broken guard never lets a request through
and never becomes a 500.

The user is ``request.context[user_key]``: a dict (the JWT claims an auth
middleware stores) or any object with attributes. Roles and permissions are
a list (or tuple or set) of strings, or one string of names separated by
commas and/or spaces (``"admin editor"``, the OAuth ``scope`` style).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from cello._cello import constant_time_compare
from cello._routes import is_async_handler
from cello.exceptions import HTTPException

__all__ = [
    "And",
    "AndGuard",
    "Authenticated",
    "AuthenticatedGuard",
    "ForbiddenError",
    "Guard",
    "GuardError",
    "Not",
    "NotGuard",
    "Or",
    "OrGuard",
    "Permission",
    "PermissionGuard",
    "Role",
    "RoleGuard",
    "UnauthorizedError",
    "constant_time_compare",
    "verify_guards",
]

GuardResult = bool | str | None
GuardCallable = Callable[[Any], "GuardResult | Awaitable[GuardResult]"]

ACCESS_DENIED = "Access denied"
AUTHENTICATION_REQUIRED = "Authentication required"
NOT_FAILED = "Guard succeeded but was expected to fail"
GLOBAL_FALSE = "Python guard returned False"

_SEPARATORS = re.compile(r"[\s,]+")

error_log = logging.getLogger("cello.error")


class GuardError(HTTPException):
    """A guard's refusal: ``status_code`` (403 unless given) with ``message``
    as the problem's ``detail``. ``app.exception_handler(GuardError)`` (or
    one of its subclasses) replaces the response."""

    def __init__(
        self,
        message: str,
        status_code: int = 403,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, message, headers)
        self.message = message


class ForbiddenError(GuardError):
    """The user is known but may not do this: 403."""

    def __init__(self, message: str = ACCESS_DENIED) -> None:
        super().__init__(message, 403)


class UnauthorizedError(GuardError):
    """No user: 401, with ``WWW-Authenticate: Bearer`` as RFC 9110 asks of
    every 401 (pass ``headers`` for another scheme)."""

    def __init__(
        self, message: str = AUTHENTICATION_REQUIRED, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, 401, headers if headers is not None else {
            "WWW-Authenticate": "Bearer"
        })  # fmt: skip


def _is_async(guard: Any) -> bool:
    """Whether calling ``guard`` gives an awaitable, as far as can be told
    before calling it."""
    if isinstance(guard, Guard):
        return guard._is_async()
    return is_async_handler(guard)


def _broken(guard: Any, request: Any, exc: Exception) -> GuardError:
    """The refusal for a guard that raised something other than an HTTP
    exception: a bug, so it is logged, and the request is refused (403),
    never let through and never a 500."""
    error_log.error(
        "Guard %r raised for %s %s",
        guard,
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return GuardError(f"Guard error: {exc}")


def _judge(result: Any, false_message: str) -> None:
    """Raises the refusal a guard's return value means, if any."""
    if result is None or result is True:
        return
    if result is False:
        raise ForbiddenError(false_message)
    if isinstance(result, str):
        raise ForbiddenError(result)
    # A truthy non-bool (1, a user object) is not a clear yes: refuse, so a
    # guard that returns the wrong thing fails closed.
    raise GuardError(f"Guard error: guard returned {type(result).__name__}, not bool, str or None")


async def _judge_later(
    pending: Awaitable[Any], guard: Any, request: Any, false_message: str
) -> None:
    try:
        result = await pending
    except HTTPException:
        raise
    except Exception as exc:
        raise _broken(guard, request, exc) from exc
    _judge(result, false_message)


def _check(
    guard: GuardCallable, request: Any, false_message: str, may_await: bool = True
) -> Awaitable[None] | None:
    """Runs one guard: returns None when it passed, raises its refusal, or
    returns an awaitable that does either for an async guard."""
    try:
        result = guard(request)
    except HTTPException:
        raise  # a refusal, or another deliberate HTTP answer
    except Exception as exc:
        raise _broken(guard, request, exc) from exc
    if inspect.isawaitable(result):
        if not may_await:
            # Registered as sync, so nothing can await it: refuse rather
            # than let the request through unchecked.
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise GuardError(
                f"Guard error: {guard!r} returned an awaitable but was not declared `async def`"
            )
        return _judge_later(result, guard, request, false_message)
    _judge(result, false_message)
    return None


def verify_guards(
    guards: Iterable[GuardCallable], request: Any, *, false_message: str = ACCESS_DENIED
) -> Awaitable[None] | None:
    """Runs ``guards`` in order; all must pass (AND). Raises the first
    refusal as a ``GuardError`` (or the ``HTTPException`` a guard raised).

    Returns None when every guard ran synchronously, or, from the first
    async guard on, an awaitable that runs the rest: ``await`` it.
    """
    guards = list(guards)
    for index, guard in enumerate(guards):
        pending = _check(guard, request, false_message)
        if pending is not None:
            return _verify_rest(pending, guards[index + 1 :], request, false_message)
    return None


async def _verify_rest(
    pending: Awaitable[None], rest: list[GuardCallable], request: Any, false_message: str
) -> None:
    await pending
    for guard in rest:
        later = _check(guard, request, false_message)
        if later is not None:
            await later


def _names(given: Any, what: str, owner: str) -> tuple[str, ...]:
    """Role or permission names from a str (split on commas and spaces) or
    an iterable of str; at least one."""
    if isinstance(given, str):
        names = tuple(n for n in _SEPARATORS.split(given) if n)
    else:
        try:
            names = tuple(given)
        except TypeError:
            raise ValueError(
                f"{owner}: {what} must be a str or a list of str, not {given!r}"
            ) from None
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"{owner}: {what} must be non-empty strings, not {name!r}")
        names = tuple(n.strip() for n in names)
    if not names:
        raise ValueError(f"{owner} needs at least one of its {what}")
    return names


def _user(request: Any, user_key: str) -> Any:
    """``request.context[user_key]``, or an ``UnauthorizedError`` when absent."""
    user = request.context.get(user_key)
    if user is None:
        raise UnauthorizedError()
    return user


def _held(user: Any, key: str) -> frozenset[str]:
    """The names the user holds under ``key``: a list/tuple/set of str or
    one str of names. Anything else (a number, a dict) holds nothing."""
    if isinstance(user, Mapping):
        value = user.get(key)
    else:
        value = getattr(user, key, None)
    if isinstance(value, str):
        return frozenset(n for n in _SEPARATORS.split(value) if n)
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


class Guard:
    """Base class of guards: override ``__call__(request)`` (it may be
    ``async def``) to return None/True to pass, False or a message to
    refuse, or raise a ``GuardError``."""

    def __call__(self, request: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(request)")

    def _is_async(self) -> bool:
        return inspect.iscoroutinefunction(type(self).__call__)


class Authenticated(Guard):
    """Passes when ``request.context[user_key]`` holds a user (not None);
    401 "Authentication required" otherwise."""

    def __init__(self, user_key: str = "user") -> None:
        self.user_key = user_key

    def __call__(self, request: Any) -> None:
        _user(request, self.user_key)

    def __repr__(self) -> str:
        return f"Authenticated(user_key={self.user_key!r})"


class _Holds(Guard):
    """A user must hold some names (roles, permissions) under one key."""

    what = ""

    def __init__(self, names: Any, require_all: bool, user_key: str, key: str) -> None:
        self.names = _names(names, self.what, type(self).__name__)
        self.require_all = bool(require_all)
        self.user_key = user_key
        self.key = key

    def __call__(self, request: Any) -> None:
        held = _held(_user(request, self.user_key), self.key)
        if self.require_all:
            missing = [n for n in self.names if n not in held]
            if missing:
                raise ForbiddenError(f"Missing required {self.what}: {', '.join(missing)}")
        elif held.isdisjoint(self.names):
            raise ForbiddenError(f"Requires one of {self.what}: {', '.join(self.names)}")


class Role(_Holds):
    """The user's ``role_key`` must hold one of ``roles`` (all of them with
    ``require_all=True``)."""

    what = "roles"

    def __init__(
        self,
        roles: Iterable[str] | str,
        require_all: bool = False,
        user_key: str = "user",
        role_key: str = "roles",
    ) -> None:
        super().__init__(roles, require_all, user_key, role_key)

    @property
    def roles(self) -> tuple[str, ...]:
        return self.names

    @property
    def role_key(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"Role({list(self.names)!r}, require_all={self.require_all})"


class Permission(_Holds):
    """The user's ``perm_key`` must hold all of ``permissions`` (one of them
    with ``require_all=False``)."""

    what = "permissions"

    def __init__(
        self,
        permissions: Iterable[str] | str,
        require_all: bool = True,
        user_key: str = "user",
        perm_key: str = "permissions",
    ) -> None:
        super().__init__(permissions, require_all, user_key, perm_key)

    @property
    def permissions(self) -> tuple[str, ...]:
        return self.names

    @property
    def perm_key(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"Permission({list(self.names)!r}, require_all={self.require_all})"


def _guard_list(owner: str, guards: tuple[Any, ...]) -> tuple[GuardCallable, ...]:
    """``And(a, b)`` and ``And([a, b])`` alike; every guard callable."""
    if len(guards) == 1 and isinstance(guards[0], (list, tuple)):
        guards = tuple(guards[0])
    if not guards:
        raise ValueError(f"{owner} needs at least one guard")
    for guard in guards:
        if not callable(guard):
            raise TypeError(f"{owner} takes guards (callables), not {guard!r}")
    return guards


class And(Guard):
    """Passes when every guard passes; refuses with the first refusal."""

    def __init__(self, *guards: Any) -> None:
        self.guards = _guard_list("And", guards)

    def __call__(self, request: Any) -> Awaitable[None] | None:
        return verify_guards(self.guards, request)

    def _is_async(self) -> bool:
        return any(_is_async(g) for g in self.guards)

    def __repr__(self) -> str:
        return f"And({', '.join(map(repr, self.guards))})"


class Or(Guard):
    """Passes when any guard passes. When all refuse, it refuses as the
    first guard that refused for a reason other than a missing user did;
    when every refusal was a 401, with that 401."""

    def __init__(self, *guards: Any) -> None:
        self.guards = _guard_list("Or", guards)

    def __call__(self, request: Any) -> Awaitable[None] | None:
        refusals: list[HTTPException] = []
        for index, guard in enumerate(self.guards):
            try:
                pending = _check(guard, request, ACCESS_DENIED)
            except HTTPException as refusal:
                refusals.append(refusal)
                continue
            if pending is None:
                return None
            return self._rest(pending, index + 1, request, refusals)
        raise self._refusal(refusals)

    async def _rest(
        self, pending: Awaitable[None], start: int, request: Any, refusals: list[HTTPException]
    ) -> None:
        try:
            await pending
            return
        except HTTPException as refusal:
            refusals.append(refusal)
        for guard in self.guards[start:]:
            try:
                later = _check(guard, request, ACCESS_DENIED)
                if later is not None:
                    await later
                return
            except HTTPException as refusal:
                refusals.append(refusal)
        raise self._refusal(refusals)

    @staticmethod
    def _refusal(refusals: list[HTTPException]) -> HTTPException:
        for refusal in refusals:
            if refusal.status_code != 401:
                return refusal
        return refusals[0]

    def _is_async(self) -> bool:
        return any(_is_async(g) for g in self.guards)

    def __repr__(self) -> str:
        return f"Or({', '.join(map(repr, self.guards))})"


class Not(Guard):
    """Passes when ``guard`` refuses; refuses with 403 "Guard succeeded but
    was expected to fail" when it passes. A guard that breaks (raises
    something other than a refusal) is not a refusal: ``Not`` refuses too,
    so a bug never opens a route."""

    def __init__(self, guard: Any) -> None:
        if not callable(guard):
            raise TypeError(f"Not takes a guard (a callable), not {guard!r}")
        self.guard = guard

    def __call__(self, request: Any) -> Awaitable[None] | None:
        try:
            result = self.guard(request)
        except GuardError:
            return None
        except HTTPException:
            raise
        except Exception as exc:
            raise _broken(self.guard, request, exc) from exc
        if inspect.isawaitable(result):
            return self._later(result, request)
        return self._invert(result)

    async def _later(self, pending: Awaitable[Any], request: Any) -> None:
        try:
            result = await pending
        except GuardError:
            return
        except HTTPException:
            raise
        except Exception as exc:
            raise _broken(self.guard, request, exc) from exc
        self._invert(result)

    @staticmethod
    def _invert(result: Any) -> None:
        try:
            _judge(result, ACCESS_DENIED)
        except ForbiddenError:
            return
        raise ForbiddenError(NOT_FAILED)

    def _is_async(self) -> bool:
        return _is_async(self.guard)

    def __repr__(self) -> str:
        return f"Not({self.guard!r})"


RoleGuard = Role
PermissionGuard = Permission
AuthenticatedGuard = Authenticated
AndGuard = And
OrGuard = Or
NotGuard = Not


def guard_handler(
    call: Callable[[Any], Any],
    is_async: bool,
    suspends: bool,
    global_guards: Iterable[GuardCallable],
    route_guards: Iterable[GuardCallable],
) -> tuple[Callable[[Any], Any], bool, bool]:
    """The handler a guarded route registers: it runs the app's global
    guards, then the route's (its blueprints' first), then ``call``.
    Returns it with its ``is_async`` and ``suspends``; built once, at
    registration, so routes without guards keep their handler as it is."""
    checks = [(g, GLOBAL_FALSE) for g in global_guards]
    checks += [(g, ACCESS_DENIED) for g in route_guards]
    any_async = any(_is_async(g) for g, _ in checks)

    if not is_async and not any_async:

        @functools.wraps(call)
        def guarded(request: Any) -> Any:
            for guard, false_message in checks:
                _check(guard, request, false_message, may_await=False)
            return call(request)

        return guarded, False, False

    @functools.wraps(call)
    async def guarded_async(request: Any) -> Any:
        for guard, false_message in checks:
            pending = _check(guard, request, false_message)
            if pending is not None:
                await pending
        result = call(request)
        if is_async:
            result = await result
        return result

    return guarded_async, True, any_async or suspends
