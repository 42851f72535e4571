"""What a handler's parameters ask for, worked out once at registration.

``analyse(handler, path)`` reads the handler's signature and type hints and
says, for each parameter, where its value comes from (the request itself, the
route path, the query string, a header, a cookie, the JSON body, a
dependency, or the request's background tasks). The binder (``cello._binding``)
turns that into a per-request call; OpenAPI reads it to describe the route.
Nothing here runs per request.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from cello.dependencies import Depends
from cello.params import Header, ParamMarker

__all__ = ["REQUIRED", "Dependency", "HandlerSignature", "Param", "analyse", "path_names"]

REQUIRED = inspect.Parameter.empty

SOURCES = ("request", "path", "query", "header", "cookie", "body", "depends", "background")

# Names the request is passed as when the parameter has no annotation.
_REQUEST_NAMES = ("request", "req")

# `{name}`, `{name:constraint}` and the catch-all `{*name}` of a route path.
_PATH_PARAM = re.compile(r"\{\*?([^{}:]+)(?::[^{}]*)?\}")


@dataclass(frozen=True)
class Dependency:
    """One ``Depends(...)``.

    ``is_async`` says calling ``target`` needs awaiting; for a generator it
    says the generator is an async one.
    """

    target: str | Callable[..., Any]
    scope: str
    params: tuple[Param, ...]
    is_async: bool
    is_generator: bool

    @property
    def name(self) -> str:
        target = self.target
        return target if isinstance(target, str) else _qualname(target)


@dataclass(frozen=True)
class Param:
    """One parameter of a handler or of a dependency."""

    name: str
    source: str
    annotation: Any
    default: Any = REQUIRED
    alias: str | None = None
    dependency: Dependency | None = None
    description: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def wire_name(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class HandlerSignature:
    """Everything ``analyse`` found out about one handler."""

    params: tuple[Param, ...]
    body: Param | None
    response_model: Any
    only_request: bool

    def walk(self) -> Iterator[Param]:
        """Every Param of the handler and of its dependencies, depth first,
        each dependency callable's parameters once."""
        seen: set[int] = set()

        def visit(params: tuple[Param, ...]) -> Iterator[Param]:
            for param in params:
                yield param
                dep = param.dependency
                if dep is None or not dep.params or id(dep.target) in seen:
                    continue
                seen.add(id(dep.target))
                yield from visit(dep.params)

        return visit(self.params)


def path_names(path: str) -> frozenset[str]:
    """The names of the ``{param}``, ``{param:int}`` and ``{*rest}`` segments of a route path."""
    return frozenset(_PATH_PARAM.findall(path))


def analyse(handler: Callable[..., Any], path: str, response_model: Any = None) -> HandlerSignature:
    """Where each parameter of ``handler``, routed at ``path``, comes from.

    Raises ``TypeError`` naming the handler and parameter for a signature
    Cello cannot bind (two body parameters, an annotation that does not
    resolve, a dependency cycle).
    """
    analyser = _Analyser(path_names(path))
    params = analyser.params_of(handler, handler_level=True)
    bodies = [p for p in params if p.source == "body"]
    if len(bodies) > 1:
        names = ", ".join(p.name for p in bodies)
        raise TypeError(
            f"{_qualname(handler)}: only one parameter can be the request body, not {names} "
            "(wrap them in one pydantic model)"
        )
    if response_model is None:
        response_model = _model_return(handler)
    only_request = all(p.source == "request" for p in params) and len(params) <= 1
    if only_request and params and not _first_positional_is(handler, params[0].name):
        only_request = False
    return HandlerSignature(
        params=params,
        body=bodies[0] if bodies else None,
        response_model=response_model,
        only_request=only_request,
    )


class _Analyser:
    """Analyses a handler and its dependencies for one route path."""

    def __init__(self, path_params: frozenset[str]) -> None:
        self.path_params = path_params
        self.done: dict[int, tuple[Param, ...]] = {}
        self.stack: list[Any] = []

    def params_of(self, func: Callable[..., Any], handler_level: bool = False) -> tuple[Param, ...]:
        key = id(func)
        if key in self.done:
            return self.done[key]
        if any(f is func for f in self.stack):
            chain = " -> ".join(_qualname(f) for f in [*self.stack, func])
            raise TypeError(f"dependency cycle: {chain}")
        self.stack.append(func)
        try:
            params = self._analyse(func, handler_level)
        finally:
            self.stack.pop()
        self.done[key] = params
        return params

    def _analyse(self, func: Callable[..., Any], handler_level: bool) -> tuple[Param, ...]:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return ()
        hints, unresolved = _type_hints(func, signature)
        bindable = [
            p
            for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        # Today's convention: a handler with one parameter gets the request in it.
        lone = handler_level and len(bindable) == 1
        out = []
        for index, parameter in enumerate(bindable):
            out.append(
                self._param(func, parameter, hints, unresolved, lone and index == 0, index == 0)
            )
        return tuple(out)

    def _param(
        self,
        func: Callable[..., Any],
        parameter: inspect.Parameter,
        hints: dict[str, Any],
        unresolved: dict[str, str],
        lone: bool,
        first: bool,
    ) -> Param:
        name = parameter.name
        annotation, markers = _split_annotated(hints.get(name, Any))
        default = parameter.default
        marker: Any = None
        for candidate in (*markers, default):
            if isinstance(candidate, (ParamMarker, Depends)):
                marker = candidate
                break
        if isinstance(default, (ParamMarker, Depends)):
            default = REQUIRED
        if isinstance(marker, ParamMarker):
            if marker.default is not REQUIRED:
                default = marker.default
            if marker.constraints:
                annotation = _constrained(annotation, marker.constraints)
        field = _pydantic_field(default)
        if field is not None:
            # `limit: int = Field(10, ge=1)`: the constraints go in the annotation.
            annotation = Annotated[annotation, field]
            default = REQUIRED if field.is_required() else field.get_default()

        def unresolvable() -> TypeError:
            return TypeError(
                f"{_qualname(func)}: the annotation {unresolved[name]!r} of parameter "
                f"{name!r} does not resolve (import it at module level)"
            )

        if isinstance(marker, Depends):
            if name in unresolved and marker.dependency is None:
                raise unresolvable()
            dependency = self._dependency(marker, annotation)
            return Param(name, "depends", annotation, REQUIRED, dependency=dependency)
        if isinstance(marker, ParamMarker):
            if name in unresolved:
                raise unresolvable()
            alias = marker.alias
            if alias is None and isinstance(marker, Header) and marker.convert_underscores:
                converted = name.replace("_", "-")
                alias = converted if converted != name else None
            return Param(name, marker.source, annotation, default, alias, None, marker.description)
        if _is_request_type(annotation):
            return Param(name, "request", annotation)
        if _is_background_tasks(annotation):
            return Param(name, "background", annotation)
        may_be_request = default is REQUIRED and name not in self.path_params
        if name in unresolved:
            if may_be_request and (name in _REQUEST_NAMES or lone):
                return Param(name, "request", Any)
            raise unresolvable()
        if annotation is Any and may_be_request and ((name in _REQUEST_NAMES and first) or lone):
            return Param(name, "request", Any)
        described = field.description if field is not None else None
        if name in self.path_params:
            return Param(name, "path", annotation, default, description=described)
        if _is_model_type(annotation):
            return Param(name, "body", annotation, default, description=described)
        return Param(name, "query", annotation, default, description=described)

    def _dependency(self, marker: Depends, annotation: Any) -> Dependency:
        target = marker.dependency
        if target is None:
            if not callable(annotation) or annotation is Any:
                raise TypeError("Depends() without an argument needs a class annotation to call")
            target = annotation
        if isinstance(target, str):
            return Dependency(target, "singleton", (), False, False)
        return Dependency(
            target=target,
            scope=marker.scope,
            params=self.params_of(target),
            is_async=_is_async_callable(target),
            is_generator=_is_generator_callable(target),
        )


def _qualname(func: Any) -> str:
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__qualname__", None) or type(func).__qualname__


def _code_owner(func: Any) -> Any:
    """The function whose code and annotations calling ``func`` runs."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.isclass(func):
        return func.__init__
    if inspect.isfunction(func) or inspect.ismethod(func):
        # A decorator's wrapper (functools.wraps) has the annotations but the
        # decorator module's globals; the wrapped function has both right.
        return inspect.unwrap(func)
    if inspect.isbuiltin(func):
        return func
    return getattr(type(func), "__call__", func)  # noqa: B004 - callable objects


def _type_hints(
    func: Callable[..., Any], signature: inspect.Signature
) -> tuple[dict[str, Any], dict[str, str]]:
    """The resolved annotations of ``func``'s parameters, and the ones that
    do not resolve (a name defined in a function body under
    ``from __future__ import annotations``), by parameter name."""
    owner = _code_owner(func)
    try:
        return typing.get_type_hints(owner, include_extras=True), {}
    except Exception:
        pass
    hints: dict[str, Any] = {}
    unresolved: dict[str, str] = {}
    namespace = getattr(inspect.unwrap(owner), "__globals__", {})
    for parameter in signature.parameters.values():
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace))
            except Exception:
                unresolved[parameter.name] = parameter.annotation
                continue
        hints[parameter.name] = annotation
    return hints, unresolved


def _split_annotated(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, Query(...), Field(gt=0)]`` → (``Annotated[T, Field(gt=0)]``,
    the Cello markers)."""
    if get_origin(annotation) is not Annotated:
        return annotation, ()
    base, *metadata = get_args(annotation)
    markers = tuple(m for m in metadata if isinstance(m, (ParamMarker, Depends)))
    if not markers:
        return annotation, ()
    rest = [m for m in metadata if not isinstance(m, (ParamMarker, Depends))]
    if rest:
        return Annotated[(base, *rest)], markers  # type: ignore[return-value]
    return base, markers


def _constrained(annotation: Any, constraints: dict[str, Any]) -> Any:
    from pydantic import Field

    return Annotated[annotation, Field(**constraints)]


def _pydantic_field(default: Any) -> Any:
    """``default`` when it is a pydantic ``Field(...)``, else None."""
    if type(default).__name__ != "FieldInfo":
        return None
    try:
        from pydantic.fields import FieldInfo
    except ImportError:
        return None
    return default if isinstance(default, FieldInfo) else None


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    if origin is Annotated:
        return _strip_optional(get_args(annotation)[0])
    return annotation


def _is_request_type(annotation: Any) -> bool:
    from cello._cello import Request

    annotation = _strip_optional(annotation)
    return inspect.isclass(annotation) and issubclass(annotation, Request)


def _is_background_tasks(annotation: Any) -> bool:
    annotation = _strip_optional(annotation)
    if not inspect.isclass(annotation):
        return False
    try:
        from cello.background import BackgroundTasks
    except ImportError:  # the class is not there: recognise it by name
        return any(
            c.__name__ == "BackgroundTasks" and c.__module__.startswith("cello")
            for c in annotation.__mro__
        )
    return issubclass(annotation, BackgroundTasks)


def _is_pydantic_model(annotation: Any) -> bool:
    if not inspect.isclass(annotation):
        return False
    try:
        from pydantic import BaseModel
    except ImportError:
        return False
    return issubclass(annotation, BaseModel)


def _is_model_type(annotation: Any) -> bool:
    """A pydantic model, ``list[Model]``, or either made optional."""
    annotation = _strip_optional(annotation)
    if _is_pydantic_model(annotation):
        return True
    if get_origin(annotation) in (list, tuple, set, frozenset):
        args = get_args(annotation)
        return bool(args) and _is_pydantic_model(_strip_optional(args[0]))
    return False


def _model_return(handler: Callable[..., Any]) -> Any:
    """The return annotation when it is a pydantic model or a list of them."""
    try:
        hints = typing.get_type_hints(_code_owner(handler), include_extras=True)
    except Exception:
        return None
    annotation = hints.get("return")
    return annotation if annotation is not None and _is_model_type(annotation) else None


def _is_async_callable(func: Any) -> bool:
    from cello._routes import is_async_handler

    return is_async_handler(func) or inspect.isasyncgenfunction(_code_owner(func))


def _is_generator_callable(func: Any) -> bool:
    owner = _code_owner(func)
    return inspect.isgeneratorfunction(owner) or inspect.isasyncgenfunction(owner)


def _first_positional_is(handler: Callable[..., Any], name: str) -> bool:
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return True
    first = parameters[0] if parameters else None
    return (
        first is not None
        and first.name == name
        and first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)
    )
