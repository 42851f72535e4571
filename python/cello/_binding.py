"""Binding a handler's parameters to the request, built once per route.

``bind(handler, info, state)`` reads the handler's signature
(``cello._signature.analyse``) and returns the ``call(request)`` the core
runs: it extracts and converts each parameter, resolves ``Depends`` (with
per-request caching, scopes and generator cleanup after the response),
raises ``RequestValidationError`` (422) listing every bad value, calls the
handler, and passes the result through the route's response model. All the
decisions (which extractor, which converter, sync or async) are taken here,
at registration; the per-request path only runs the chosen closures.
"""

from __future__ import annotations

import inspect
import logging
import threading
import typing
from collections.abc import Callable
from typing import Any

from cello._routes import RouteInfo, can_suspend, is_async_handler, takes_request
from cello._signature import REQUIRED, Dependency, HandlerSignature, Param, analyse
from cello.exceptions import RequestValidationError, ResponseValidationError
from cello.validation import (
    DEFAULT_DTO_CONFIG,
    DTOConfig,
    body_errors,
    check_json_content_type,
    error_list,
)

__all__ = ["DependencyState", "bind"]

log = logging.getLogger("cello.dependencies")

# A value that failed validation; its errors are in the request's error list.
_INVALID = object()

Errors = list[dict[str, Any]]
Getter = Callable[[Any, "_Context | None", Errors], Any]


class DependencyState:
    """What the app's dependencies share across requests: registered
    singletons, ``scope="singleton"`` values, overrides and the body settings."""

    def __init__(self, shutdown_hooks: list[Callable[[], Any]] | None = None) -> None:
        self.shutdown_hooks = shutdown_hooks
        self.singletons: dict[str, Any] = {}
        self.overrides: dict[Any, Any] = {}
        self.created: dict[int, Any] = {}
        self.singleton_exits: list[Any] = []
        self.override_plans: dict[int, _Plan] = {}
        self.dto_config: DTOConfig = DEFAULT_DTO_CONFIG
        # Sync handlers may run on several I/O threads: one creates a singleton.
        self.lock = threading.RLock()

    def singleton(self, name: str) -> Any:
        try:
            return self.singletons[name]
        except KeyError:
            raise LookupError(
                f"Depends({name!r}): no singleton is registered under that name "
                f"(app.register_singleton({name!r}, value))"
            ) from None

    async def close(self) -> None:
        """Runs the cleanup of generator dependencies created as singletons
        (the app's shutdown calls it), last created first."""
        exits, self.singleton_exits = self.singleton_exits, []
        self.created.clear()
        for name, gen in reversed(exits):
            await _finish_generator(name, gen, None)


class _Context:
    """One request's dependency values, cleanups and background tasks."""

    __slots__ = ("cache", "error", "exits", "request", "scheduled", "tasks")

    def __init__(self, request: Any) -> None:
        self.request = request
        self.cache: dict[int, Any] = {}
        self.exits: list[tuple[str, Any]] = []
        self.tasks: Any = None
        self.error: BaseException | None = None
        self.scheduled = False

    def schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.request._after_response(self.close)

    async def close(self) -> None:
        """After the response: the background tasks (unless the handler
        failed), then each generator dependency's code after ``yield``, last
        entered first, the handler's exception thrown into it if it failed."""
        if self.tasks is not None and self.error is None:
            try:
                result = self.tasks.run_all()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("background tasks failed")
        for name, gen in reversed(self.exits):
            await _finish_generator(name, gen, self.error)


async def _finish_generator(name: str, gen: Any, error: BaseException | None) -> None:
    try:
        if inspect.isasyncgen(gen):
            if error is None:
                await gen.__anext__()
            else:
                await gen.athrow(error)
        elif error is None:
            next(gen)
        else:
            gen.throw(error)
    except (StopIteration, StopAsyncIteration):
        return
    except BaseException as exc:
        if exc is not error:
            log.exception("cleanup of dependency %s failed", name)
        return
    log.error("dependency %s yielded more than once; only one yield is allowed", name)
    if inspect.isasyncgen(gen):
        await gen.aclose()
    else:
        gen.close()


# -- converters --------------------------------------------------------------


def _strip(annotation: Any) -> Any:
    """The type inside ``Optional[...]`` / ``Annotated[...]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return annotation


def _is_sequence(annotation: Any) -> bool:
    return typing.get_origin(_strip(annotation)) in (list, tuple, set, frozenset)


def _adapter(annotation: Any, owner: str, param: Param) -> Any:
    try:
        from pydantic import TypeAdapter
    except ImportError:  # pragma: no cover - pydantic is installed for typed parameters
        raise TypeError(
            f"{owner}: parameter {param.name!r} is annotated {annotation!r}, "
            "which needs pydantic (pip install pydantic)"
        ) from None
    try:
        return TypeAdapter(annotation)
    except Exception as exc:
        raise TypeError(
            f"{owner}: cannot validate parameter {param.name!r} as {annotation!r}: {exc}"
        ) from None


# Annotations a raw str (or None) already satisfies.
_UNCONVERTED = (str, Any, inspect.Parameter.empty, str | None, typing.Optional[str])  # noqa: UP045


def _converter(param: Param, owner: str, config: DTOConfig) -> Callable[[Any, Errors], Any] | None:
    """A function turning the raw str (or list of str) into the annotated type,
    appending errors; None when the raw value is already what is wanted."""
    if param.annotation in _UNCONVERTED:
        return None
    adapter = _adapter(param.annotation, owner, param)
    validate = adapter.validate_python
    loc = (param.source, param.wire_name)
    from pydantic import ValidationError

    def convert(raw: Any, errors: Errors) -> Any:
        try:
            return validate(raw)
        except ValidationError as exc:
            errors.extend(error_list(exc.errors(include_url=False), loc, config))
            return _INVALID

    return convert


def _missing(param: Param, config: DTOConfig) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "missing",
        "loc": [param.source, param.wire_name],
        "msg": "Field required",
    }
    if config.include_input:
        error["input"] = None
    return error


# -- extractors --------------------------------------------------------------


def _lookup(param: Param) -> Callable[[Any], Any]:
    """Reads the raw value (str, list of str, or None) from the request."""
    key = param.wire_name
    many = _is_sequence(param.annotation)
    source = param.source
    if source == "path":
        return lambda request: request.get_param(key)
    if source == "query":
        if many:
            return lambda request: request.query.get_all(key) or None
        return lambda request: request.query.get(key)
    if source == "header":
        if many:
            return lambda request: request.headers.get_all(key) or None
        return lambda request: request.headers.get(key)
    if source == "cookie":
        return lambda request: request.cookies.get(key)
    raise AssertionError(source)


def _simple_getter(param: Param, owner: str, config: DTOConfig) -> Getter:
    lookup = _lookup(param)
    convert = _converter(param, owner, config)
    default = param.default

    def get(request: Any, ctx: _Context | None, errors: Errors) -> Any:
        raw = lookup(request)
        if raw is None:
            if default is REQUIRED:
                errors.append(_missing(param, config))
                return _INVALID
            return default
        return raw if convert is None else convert(raw, errors)

    return get


def _body_getter(param: Param, owner: str, config: DTOConfig) -> Getter:
    from pydantic import BaseModel, ValidationError

    annotation = _strip(param.annotation) if param.default is REQUIRED else param.annotation
    strict = True if config.strict else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model = annotation
        if config.forbid_extra and model.model_config.get("extra") != "forbid":
            forbidding = {**model.model_config, "extra": "forbid"}
            namespace = {"model_config": forbidding, "__module__": model.__module__}
            model = type(model.__name__, (model,), namespace)
        validate_json = model.model_validate_json
    else:
        validate_json = _adapter(param.annotation, owner, param).validate_json
    default = param.default

    def get(request: Any, ctx: _Context | None, errors: Errors) -> Any:
        raw = request.body()
        if not raw.strip():
            if default is REQUIRED:
                missing: dict[str, Any] = {
                    "type": "missing",
                    "loc": ["body"],
                    "msg": "Field required",
                }
                if config.include_input:
                    missing["input"] = None
                errors.append(missing)
                return _INVALID
            return default
        check_json_content_type(request)
        try:
            return validate_json(raw, strict=strict)
        except ValidationError as exc:
            errors.extend(body_errors(exc, config))
            return _INVALID

    return get


def _request_getter(request: Any, ctx: _Context | None, errors: Errors) -> Any:
    return request


def _background_getter(annotation: Any) -> Getter:
    make = _strip(annotation)

    def get(request: Any, ctx: _Context | None, errors: Errors) -> Any:
        assert ctx is not None
        if ctx.tasks is None:
            tasks = make()
            # Not attached to the request as a handler-made one is: the
            # context runs these only if the handler returns (FastAPI's rule).
            tasks._request = None
            ctx.tasks = tasks
            ctx.schedule()
        return ctx.tasks

    return get


# -- plans -------------------------------------------------------------------


class _Plan:
    """How to call one callable (the handler or a dependency): a getter or a
    sub-plan per parameter, and how to pass them."""

    __slots__ = (
        "func",
        "is_async",
        "is_generator",
        "key",
        "name",
        "needs_async",
        "positional",
        "scope",
        "singleton_name",
        "steps",
    )

    def __init__(self) -> None:
        self.func: Any = None
        self.name = ""
        self.key = 0
        self.scope = "request"
        self.singleton_name: str | None = None
        self.is_async = False
        self.is_generator = False
        # (keyword name or None for positional, getter or sub-plan)
        self.steps: list[tuple[str | None, Getter | _Plan]] = []
        self.positional = 0
        self.needs_async = False


class _Builder:
    def __init__(self, state: DependencyState, config: DTOConfig, owner: str) -> None:
        self.state = state
        self.config = config
        self.owner = owner
        self.plans: dict[int, _Plan] = {}
        self.uses: dict[int, int] = {}
        self.uses_context = False

    def plan(self, func: Any, params: tuple[Param, ...]) -> _Plan:
        plan = _Plan()
        plan.func = func
        plan.name = getattr(func, "__qualname__", None) or repr(func)
        plan.key = id(func)
        positional_only = _positional_only(func)
        for param in params:
            step = self.step(param)
            if param.name in positional_only:
                plan.steps.insert(plan.positional, (None, step))
                plan.positional += 1
            else:
                plan.steps.append((param.name, step))
            if isinstance(step, _Plan) and step.needs_async:
                plan.needs_async = True
        return plan

    def step(self, param: Param) -> Getter | _Plan:
        source = param.source
        if source == "request":
            return _request_getter
        if source == "body":
            return _body_getter(param, self.owner, self.config)
        if source == "background":
            self.uses_context = True
            return _background_getter(param.annotation)
        if source == "depends":
            assert param.dependency is not None
            return self.dependency(param.dependency)
        return _simple_getter(param, self.owner, self.config)

    def dependency(self, dep: Dependency) -> _Plan:
        if isinstance(dep.target, str):
            plan = _Plan()
            plan.singleton_name = dep.target
            plan.name = dep.target
            return plan
        key = id(dep.target)
        self.uses[key] = self.uses.get(key, 0) + 1
        known = self.plans.get(key)
        if known is not None and known.scope == dep.scope:
            self.count_again(known)
            return known
        plan = self.plan(dep.target, dep.params)
        plan.scope = dep.scope
        plan.is_async = dep.is_async
        plan.is_generator = dep.is_generator
        plan.needs_async = plan.needs_async or dep.is_async
        self.plans[key] = plan
        return plan

    def count_again(self, plan: _Plan) -> None:
        """A second use of ``plan`` is a second use of what it depends on."""
        for _, step in plan.steps:
            if isinstance(step, _Plan) and step.singleton_name is None:
                self.uses[step.key] = self.uses.get(step.key, 0) + 1
                self.count_again(step)

    def finish(self, handler_plan: _Plan) -> None:
        """Decides, once the whole tree is known, whether a request needs a
        context (a cache shared by several uses, cleanups, tasks), and turns
        each dependency that needs neither caching nor cleanup into a plain
        call: no per-request bookkeeping for the common ``Depends(f)``."""
        for plan in self.plans.values():
            if plan.scope == "transient":
                self.count_again(plan)  # it runs at each use: so does what it asks for
        for key, plan in self.plans.items():
            shared = plan.scope == "request" and self.uses.get(key, 0) > 1
            if plan.is_generator or plan.scope == "singleton" or shared:
                self.uses_context = True
        for plan in [handler_plan, *self.plans.values()]:
            plan.steps = [
                (name, self.direct(step) if isinstance(step, _Plan) else step)
                for name, step in plan.steps
            ]

    def direct(self, plan: _Plan) -> Getter | _Plan:
        simple = (
            plan.singleton_name is None
            and not plan.steps
            and not plan.is_async
            and not plan.is_generator
            and (
                plan.scope == "transient"
                or (plan.scope == "request" and self.uses.get(plan.key, 0) == 1)
            )
        )
        if not simple:
            return plan
        func, state = plan.func, self.state

        def call_directly(request: Any, ctx: _Context | None, errors: Errors) -> Any:
            if state.overrides:
                return _resolve(plan, request, ctx, errors, state)
            return func()

        return call_directly


def _positional_only(func: Any) -> set[str]:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.kind is p.POSITIONAL_ONLY}


# -- resolution --------------------------------------------------------------


def _override(plan: _Plan, state: DependencyState, config: DTOConfig) -> _Plan:
    replacement = state.overrides.get(plan.func)
    if replacement is None:
        return plan
    known = state.override_plans.get(id(replacement))
    if known is None or known.func is not replacement:
        builder = _Builder(state, config, f"override of {plan.name}")
        sig = analyse(replacement, "/")
        known = builder.plan(replacement, sig.params)
        known.scope = plan.scope
        known.key = plan.key
        known.is_async = is_async_handler(replacement) or inspect.isasyncgenfunction(replacement)
        known.is_generator = inspect.isgeneratorfunction(replacement) or inspect.isasyncgenfunction(
            replacement
        )
        known.needs_async = known.needs_async or known.is_async
        state.override_plans[id(replacement)] = known
    return known


def _arguments(
    plan: _Plan, request: Any, ctx: _Context | None, errors: Errors, state: DependencyState
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, step in plan.steps:
        if isinstance(step, _Plan):
            value = _resolve(step, request, ctx, errors, state)
        else:
            value = step(request, ctx, errors)
        if name is None:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


def _cached(plan: _Plan, ctx: _Context | None, state: DependencyState) -> Any:
    if plan.scope == "singleton":
        return state.created.get(plan.key, _INVALID)
    if plan.scope == "request" and ctx is not None:
        return ctx.cache.get(plan.key, _INVALID)
    return _INVALID


def _store(plan: _Plan, value: Any, ctx: _Context | None, state: DependencyState) -> None:
    if plan.scope == "singleton":
        state.created[plan.key] = value
    elif plan.scope == "request" and ctx is not None:
        ctx.cache[plan.key] = value


def _entered(plan: _Plan, gen: Any, ctx: _Context | None, state: DependencyState) -> None:
    if plan.scope == "singleton":
        if not state.singleton_exits and state.shutdown_hooks is not None:
            state.shutdown_hooks.append(state.close)
        state.singleton_exits.append((plan.name, gen))
    else:
        assert ctx is not None, "a generator dependency makes the route keep a context"
        ctx.exits.append((plan.name, gen))
        ctx.schedule()


def _resolve(
    plan: _Plan, request: Any, ctx: _Context | None, errors: Errors, state: DependencyState
) -> Any:
    if plan.singleton_name is not None:
        return state.singleton(plan.singleton_name)
    if state.overrides:
        plan = _override(plan, state, DEFAULT_DTO_CONFIG)
        if plan.needs_async:
            raise RuntimeError(f"dependency override {plan.name} is async in a sync route")
    value = _cached(plan, ctx, state)
    if value is not _INVALID:
        return value
    if plan.scope == "singleton":
        with state.lock:
            value = _cached(plan, ctx, state)
            if value is not _INVALID:
                return value
            return _create(plan, request, ctx, errors, state)
    return _create(plan, request, ctx, errors, state)


def _create(
    plan: _Plan, request: Any, ctx: _Context | None, errors: Errors, state: DependencyState
) -> Any:
    before = len(errors)
    args, kwargs = _arguments(plan, request, ctx, errors, state)
    if len(errors) > before:
        return _INVALID
    value = plan.func(*args, **kwargs)
    if plan.is_generator:
        gen = value
        value = next(gen)
        _entered(plan, gen, ctx, state)
    _store(plan, value, ctx, state)
    return value


async def _arguments_async(
    plan: _Plan, request: Any, ctx: _Context | None, errors: Errors, state: DependencyState
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, step in plan.steps:
        if isinstance(step, _Plan):
            value = await _resolve_async(step, request, ctx, errors, state)
        else:
            value = step(request, ctx, errors)
        if name is None:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


async def _resolve_async(
    plan: _Plan, request: Any, ctx: _Context | None, errors: Errors, state: DependencyState
) -> Any:
    if plan.singleton_name is not None:
        return state.singleton(plan.singleton_name)
    if state.overrides:
        plan = _override(plan, state, DEFAULT_DTO_CONFIG)
    value = _cached(plan, ctx, state)
    if value is not _INVALID:
        return value
    before = len(errors)
    args, kwargs = await _arguments_async(plan, request, ctx, errors, state)
    if len(errors) > before:
        return _INVALID
    value = plan.func(*args, **kwargs)
    if plan.is_generator:
        gen = value
        value = await gen.__anext__() if inspect.isasyncgen(gen) else next(gen)
        _entered(plan, gen, ctx, state)
    elif inspect.isawaitable(value):
        value = await value
    # A singleton created by two requests at once: the first one stored wins.
    if plan.scope == "singleton" and plan.key in state.created:
        return state.created[plan.key]
    _store(plan, value, ctx, state)
    return value


# -- the bound call ----------------------------------------------------------


# Statuses whose responses have no body (RFC 9110).
_NO_BODY = (204, 205, 304)


def _result_filter(
    sig: HandlerSignature, owner: str, status_code: int | None
) -> Callable[[Any], Any] | None:
    """What the handler's result goes through: the response model's
    validation and serialisation, and the route's ``status_code``; None when
    there is neither."""
    from cello._cello import Response

    if status_code is not None and (status_code < 200 or status_code in _NO_BODY):
        # The status says there is no body, whatever the handler returned.
        def without_body(result: Any) -> Any:
            if isinstance(result, (Response, tuple)):
                return result
            response = Response.no_content()
            response.status = status_code
            return response

        return without_body

    if sig.response_model is None:
        if status_code is None:
            return None

        def with_status(result: Any) -> Any:
            if isinstance(result, (Response, tuple)):
                return result
            return (result, status_code)

        return with_status

    from pydantic import TypeAdapter, ValidationError

    try:
        adapter = TypeAdapter(sig.response_model)
    except Exception as exc:
        raise TypeError(
            f"{owner}: response_model={sig.response_model!r} is not a type pydantic "
            f"validates: {exc}"
        ) from None
    status = status_code or 200

    def serialise(body: Any, status: int) -> Any:
        try:
            value = adapter.validate_python(body, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(exc.errors(include_url=False), owner) from None
        return Response(adapter.dump_json(value), status, None, "application/json")

    def filter_result(result: Any) -> Any:
        if isinstance(result, Response):
            return result
        if type(result) is tuple:
            # (body, status[, headers]): the body goes through the model.
            if len(result) in (2, 3) and not isinstance(result[0], Response):
                return (serialise(result[0], 200), *result[1:])
            return result
        return serialise(result, status)

    return filter_result


def _plain_call(
    handler: Callable[..., Any],
    getters: tuple[tuple[str, Getter], ...],
    finish: Callable[[Any], Any] | None,
    state: DependencyState,
) -> Callable[[Any], Any]:
    """The bound call of a sync handler whose parameters need no context
    (no shared cache, cleanup or tasks): the common case, kept lean. With
    overrides set, the general path runs instead (an override may need one)."""
    general: Callable[[Any], Any] | None = None

    def call(request: Any) -> Any:
        if state.overrides:
            nonlocal general
            if general is None:
                general = _general_sync(handler, getters, finish)
            return general(request)
        errors: Errors = []
        kwargs = {}
        for name, get in getters:
            kwargs[name] = get(request, None, errors)
        if errors:
            raise RequestValidationError(errors)
        result = handler(**kwargs)
        return result if finish is None else finish(result)

    return call


def _general_sync(
    handler: Callable[..., Any],
    getters: tuple[tuple[str, Getter], ...],
    finish: Callable[[Any], Any] | None,
) -> Callable[[Any], Any]:
    def call(request: Any) -> Any:
        ctx = _Context(request)
        errors: Errors = []
        try:
            kwargs = {name: get(request, ctx, errors) for name, get in getters}
            if errors:
                raise RequestValidationError(errors)
            result = handler(**kwargs)
        except BaseException as exc:
            ctx.error = exc
            raise
        return result if finish is None else finish(result)

    return call


def _request_only(
    handler: Callable[..., Any], finish: Callable[[Any], Any] | None
) -> tuple[Callable[[Any], Any], bool, bool]:
    """A handler taking the request (or nothing) whose result is filtered."""
    assert finish is not None
    passes_request = takes_request(handler)
    if not is_async_handler(handler):

        def call(request: Any) -> Any:
            return finish(handler(request) if passes_request else handler())

        return call, False, False

    async def call_async(request: Any) -> Any:
        return finish(await (handler(request) if passes_request else handler()))

    return call_async, True, can_suspend(handler)


def bind(info: RouteInfo, state: DependencyState) -> tuple[Callable[[Any], Any], bool, bool] | None:
    """The ``(call, is_async, suspends)`` for ``info``'s handler, or None when
    it takes only the request (or nothing) and has no response model and no
    ``status_code``, which the app keeps on its fast path."""
    handler = info.handler
    sig = analyse(handler, info.path, info.response_model)
    if sig.only_request and sig.response_model is None and info.status_code is None:
        return None
    owner = getattr(handler, "__qualname__", None) or repr(handler)
    if sig.only_request:
        return _request_only(handler, _result_filter(sig, owner, info.status_code))
    config = getattr(handler, "__cello_dto__", None) or state.dto_config
    builder = _Builder(state, config, owner)
    plan = builder.plan(handler, sig.params)
    builder.finish(plan)
    uses_context = builder.uses_context
    handler_is_async = is_async_handler(handler)
    finish = _result_filter(sig, owner, info.status_code)
    positional = plan.positional

    getters = [(name, step) for name, step in plan.steps if not isinstance(step, _Plan)]
    if (
        not plan.needs_async
        and not handler_is_async
        and not uses_context
        and positional == 0
        and len(getters) == len(plan.steps)
    ):
        return _plain_call(handler, tuple(getters), finish, state), False, False

    if not plan.needs_async:

        def fill(request: Any) -> tuple[_Context | None, list[Any], dict[str, Any]]:
            # An override may be a generator: it needs the context's cleanup.
            ctx = _Context(request) if uses_context or state.overrides else None
            errors: Errors = []
            try:
                args, kwargs = _arguments(plan, request, ctx, errors, state)
            except BaseException as exc:
                if ctx is not None:
                    ctx.error = exc
                raise
            if errors:
                invalid = RequestValidationError(errors)
                if ctx is not None:
                    ctx.error = invalid
                raise invalid
            return ctx, args, kwargs

        if not handler_is_async:

            def call(request: Any) -> Any:
                ctx, args, kwargs = fill(request)
                try:
                    result = handler(*args, **kwargs) if positional else handler(**kwargs)
                except BaseException as exc:
                    if ctx is not None:
                        ctx.error = exc
                    raise
                return result if finish is None else finish(result)

            return call, False, False

        async def call_async(request: Any) -> Any:
            ctx, args, kwargs = fill(request)
            try:
                result = await (handler(*args, **kwargs) if positional else handler(**kwargs))
            except BaseException as exc:
                if ctx is not None:
                    ctx.error = exc
                raise
            return result if finish is None else finish(result)

        return call_async, True, can_suspend(handler)

    async def call_resolving(request: Any) -> Any:
        ctx = _Context(request)
        errors: Errors = []
        try:
            args, kwargs = await _arguments_async(plan, request, ctx, errors, state)
            if errors:
                raise RequestValidationError(errors)
            result = handler(*args, **kwargs)
            if handler_is_async:
                result = await result
        except BaseException as exc:
            ctx.error = exc
            raise
        return result if finish is None else finish(result)

    return call_resolving, True, True
