"""Builds the OpenAPI 3.1 document of an app from its registered routes.

Everything comes from what registration already knows: each route's
method, path, constraints, tags, summary, description and guards; its
handler's signature as ``cello._signature.analyse`` reads it (path, query,
header and cookie parameters, those of its dependencies included, and the
pydantic body); its response model; and the app's authentication
middleware. Nothing here runs per request: the document is built once and
cached by the caller.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cello._routes import RouteInfo
from cello._signature import REQUIRED, HandlerSignature, Param, analyse
from cello.openapi.mounted import merge_mounted
from cello.openapi.operations import OperationDoc, operation_doc
from cello.openapi.schemas import PROBLEM_SCHEMA, SchemaRegistry, is_model
from cello.openapi.security import SecuritySchemes

__all__ = ["OPENAPI_VERSION", "SpecOptions", "build_spec", "openapi_path"]

OPENAPI_VERSION = "3.1.0"

log = logging.getLogger("cello.openapi")

# The methods an OpenAPI Path Item can describe; a route registered for any
# other method (PROPFIND...) is left out.
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_WIRE_SOURCES = ("path", "query", "header", "cookie")

_TEMPLATE = re.compile(r"\{\{|\{([^}]*)\}")

_CONSTRAINT_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "uuid": {"type": "string", "format": "uuid"},
    "alpha": {"type": "string", "pattern": "^[A-Za-z]+$"},
    "alphanum": {"type": "string", "pattern": "^[A-Za-z0-9]+$"},
}


def _validation_schemas(prefix: str) -> dict[str, Any]:
    """The 422 problem (``HTTPValidationError``) and the ``ValidationError``
    items of its ``detail``, their names after ``prefix``."""
    return {
        f"{prefix}ValidationError": {
            "title": "ValidationError",
            "description": "One bad value: where it is, what is wrong, what was sent.",
            "type": "object",
            "properties": {
                "type": {"title": "Error Type", "type": "string"},
                "loc": {
                    "title": "Location",
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "msg": {"title": "Message", "type": "string"},
                "input": {"title": "Input"},
                "ctx": {"title": "Context", "type": "object"},
            },
            "required": ["type", "loc", "msg"],
        },
        f"{prefix}HTTPValidationError": {
            "title": "HTTPValidationError",
            "description": "A 422 problem: its detail lists every bad value of the request.",
            "type": "object",
            "properties": {
                "type": {"title": "Type", "type": "string"},
                "title": {"title": "Title", "type": "string"},
                "status": {"title": "Status", "type": "integer"},
                "detail": {
                    "title": "Detail",
                    "type": "array",
                    "items": {"$ref": f"#/components/schemas/{prefix}ValidationError"},
                },
                "instance": {"title": "Instance", "type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        },
    }


@dataclass(frozen=True)
class SpecOptions:
    """The document-wide parts of the spec (see ``App.enable_openapi``)."""

    title: str = "Cello API"
    version: str = "1.0.1"
    description: str | None = None
    summary: str | None = None
    terms_of_service: str | None = None
    contact: Mapping[str, Any] | None = None
    license_info: Mapping[str, Any] | None = None
    servers: Sequence[Mapping[str, Any]] = ()
    tags: Sequence[Mapping[str, Any]] = ()
    external_docs: Mapping[str, Any] | None = None
    # Paths documented nowhere: the documentation routes themselves.
    hidden_paths: frozenset[str] = field(default_factory=frozenset)

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"title": self.title, "version": self.version}
        if self.summary is not None:
            info["summary"] = self.summary
        info["description"] = (
            self.description
            if self.description is not None
            else f"{self.title} - Powered by Cello Framework"
        )
        if self.terms_of_service is not None:
            info["termsOfService"] = self.terms_of_service
        if self.contact is not None:
            info["contact"] = dict(self.contact)
        if self.license_info is not None:
            info["license"] = dict(self.license_info)
        return info


@dataclass(frozen=True)
class PathParam:
    """A ``{name}`` of a route path, with its inline or named constraint."""

    name: str
    constraint: dict[str, Any] | None


def openapi_path(
    path: str, constraints: Mapping[str, Any] | None = None
) -> tuple[str, list[PathParam]]:
    """The route path as an OpenAPI path template (``{id:int}`` and
    ``{*rest}`` become ``{id}`` and ``{rest}``), and its parameters."""
    params: list[PathParam] = []
    named = dict(constraints or {})

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "{{":
            return "{{"
        inner = match.group(1)
        name, _, kind = inner.partition(":")
        name = name.lstrip("*")
        params.append(PathParam(name, _constraint_schema(kind or named.get(name))))
        return "{" + name + "}"

    return _TEMPLATE.sub(replace, path), params


def _constraint_schema(constraint: Any) -> dict[str, Any] | None:
    if not constraint:
        return None
    kind = getattr(constraint, "kind", constraint)
    pattern = getattr(constraint, "pattern", None)
    if isinstance(kind, str) and kind in _CONSTRAINT_SCHEMAS:
        return dict(_CONSTRAINT_SCHEMAS[kind])
    if kind == "regex" and pattern:
        return {"type": "string", "pattern": f"^(?:{pattern})$"}
    if isinstance(constraint, str):  # a bare string names a regex
        return {"type": "string", "pattern": f"^(?:{constraint})$"}
    return None


def _docstring(handler: Any) -> tuple[str | None, str | None]:
    """The first line of the handler's docstring, and the rest."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    if not inspect.isroutine(handler):
        # A callable object: its class's docstring describes the class, not the route.
        handler = getattr(type(handler), "__call__", None)  # noqa: B004
    doc = inspect.getdoc(handler) if handler is not None else None
    if not doc:
        return None, None
    first, _, rest = doc.strip().partition("\n")
    return first.strip() or None, rest.strip() or None


def _handler_name(handler: Any) -> str:
    while isinstance(handler, functools.partial):
        handler = handler.func
    name = getattr(handler, "__name__", None) or type(handler).__name__
    return re.sub(r"\W", "_", name).strip("_") or "handler"


def _return_annotation(handler: Any) -> Any:
    """The handler's declared return type; ``inspect.Parameter.empty`` when none."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    # A callable object's annotations are on its class's __call__.
    target = handler if inspect.isroutine(handler) else type(handler).__call__
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:
        return inspect.Parameter.empty
    return hints.get("return", inspect.Parameter.empty)


def _is_response_class(annotation: Any) -> bool:
    from cello._cello import Response

    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, Response)


def _free_name(taken: Mapping[str, Any], prefix: str, name: str, *companions: str) -> str:
    """``name``, or ``Cello<name>``, ``Cello2<name>``... the first that
    neither it nor its ``companions`` (with the same prefix) clash with."""
    for candidate_prefix in (prefix, "Cello", *(f"Cello{n}" for n in range(2, 100))):
        if all(candidate_prefix + n not in taken for n in (name, *companions)):
            return candidate_prefix + name
    raise ValueError(f"no free component name for {name}")  # pragma: no cover


class _Builder:
    def __init__(
        self,
        routes: Iterable[RouteInfo],
        middleware: Iterable[Any],
        global_guards: Sequence[Any],
        options: SpecOptions,
    ) -> None:
        self.routes = list(routes)
        self.options = options
        self.global_guards = tuple(global_guards)
        self.security = SecuritySchemes(middleware)
        self.registry = SchemaRegistry()
        self.operation_ids: set[str] = set()
        self.tags: list[str] = []
        # The $refs to Cello's own schemas, named once the users' models
        # have theirs (a model called "Problem" keeps its name).
        self.problem_refs: list[dict[str, Any]] = []
        self.validation_refs: list[dict[str, Any]] = []

    def build(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for info in self.routes:
            method = info.method.lower()
            if method not in _METHODS or info.path in self.options.hidden_paths:
                continue
            doc = operation_doc(info.handler)
            if not doc.include_in_schema:
                continue
            template, path_params = openapi_path(info.path, info.constraints)
            paths.setdefault(template, {})[method] = self.operation(
                info, doc, template, path_params
            )
        schemas = dict(self.registry.resolve())
        if self.problem_refs:
            name = _free_name(schemas, "", "Problem")
            schemas[name] = PROBLEM_SCHEMA
            for ref in self.problem_refs:
                ref["$ref"] = f"#/components/schemas/{name}"
        if self.validation_refs:
            prefix = _free_name(schemas, "", "HTTPValidationError", "ValidationError")
            prefix = prefix.removesuffix("HTTPValidationError")
            schemas.update(_validation_schemas(prefix))
            for ref in self.validation_refs:
                ref["$ref"] = f"#/components/schemas/{prefix}HTTPValidationError"
        spec: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": self.options.info()}
        if self.options.servers:
            spec["servers"] = [dict(server) for server in self.options.servers]
        spec["paths"] = paths
        components: dict[str, Any] = {}
        if schemas:
            components["schemas"] = dict(sorted(schemas.items()))
        if self.security.schemes:
            components["securitySchemes"] = dict(self.security.schemes)
        if components:
            spec["components"] = components
        tags = self.top_level_tags()
        if tags:
            spec["tags"] = tags
        if self.options.external_docs is not None:
            spec["externalDocs"] = dict(self.options.external_docs)
        return spec

    def top_level_tags(self) -> list[dict[str, Any]]:
        described = [dict(tag) for tag in self.options.tags]
        named = {tag["name"] for tag in described}
        return described + [{"name": tag} for tag in self.tags if tag not in named]

    # -- one operation ----------------------------------------------------

    def operation(
        self, info: RouteInfo, doc: OperationDoc, template: str, path_params: list[PathParam]
    ) -> dict[str, Any]:
        handler = info.handler
        signature = self.signature(info)
        operation: dict[str, Any] = {}
        if info.tags:
            operation["tags"] = list(info.tags)
            self.tags.extend(tag for tag in info.tags if tag not in self.tags)
        first_line, rest = _docstring(handler)
        operation["summary"] = info.summary or first_line or f"{info.method} {template}"
        if info.description:
            operation["description"] = info.description
        elif info.summary and first_line:
            operation["description"] = "\n\n".join(p for p in (first_line, rest) if p)
        elif rest:
            operation["description"] = rest
        operation["operationId"] = self.operation_id(doc.operation_id or info, info.method)
        parameters, validated = self.parameters(signature, path_params)
        if parameters:
            operation["parameters"] = parameters
        body = self.request_body(signature)
        if body is not None:
            operation["requestBody"] = body
        elif info.method in _BODY_METHODS and _reads_the_request(signature):
            # The handler reads the body itself: say a JSON body may come,
            # without claiming a schema the code does not declare.
            operation["requestBody"] = {
                "content": {"application/json": {"schema": {}}},
                "required": False,
            }
        guarded = bool(self.global_guards or info.guards)
        security = self.security.requirements(info.path, guarded)
        operation["responses"] = self.responses(
            info,
            doc,
            signature,
            validated=validated or body is not None,
            has_body=body is not None,
            secured=security is not None,
            guarded=guarded,
        )
        if security is not None:
            operation["security"] = security
        if doc.deprecated:
            operation["deprecated"] = True
        operation.update(doc.extra)
        return operation

    def signature(self, info: RouteInfo) -> HandlerSignature | None:
        try:
            return analyse(info.handler, info.path, getattr(info, "response_model", None))
        except Exception:
            # Registration accepted the handler, so this is a handler the
            # analysis cannot read (a C function): document what the route says.
            log.warning(
                "OpenAPI: cannot read the signature of %s %s", info.method, info.path, exc_info=True
            )
            return None

    def operation_id(self, given: str | RouteInfo, method: str) -> str:
        if isinstance(given, str):
            base = given
        else:
            base = f"{method.lower()}_{_handler_name(given.handler)}"
        candidate, number = base, 1
        while candidate in self.operation_ids:
            number += 1
            candidate = f"{base}_{number}"
        self.operation_ids.add(candidate)
        return candidate

    def parameters(
        self, signature: HandlerSignature | None, path_params: list[PathParam]
    ) -> tuple[list[dict[str, Any]], bool]:
        """The operation's parameters, and whether the handler's signature
        declares any (so that a bad value can get a 422)."""
        declared: dict[tuple[str, str], Param] = {}
        for param in signature.walk() if signature is not None else ():
            if param.source in _WIRE_SOURCES:
                declared.setdefault((param.source, param.wire_name), param)
        validated = bool(declared)
        parameters: list[dict[str, Any]] = []
        for path_param in path_params:
            found = declared.pop(("path", path_param.name), None)
            parameters.append(self.path_parameter(path_param, found))
        for (source, wire_name), param in declared.items():
            if source == "path":
                continue  # not in this route's path: the router never fills it
            parameters.append(self.wire_parameter(source, wire_name, param))
        return parameters, validated

    def path_parameter(self, path_param: PathParam, param: Param | None) -> dict[str, Any]:
        annotation = param.annotation if param is not None else Any
        if annotation is Any and path_param.constraint is not None:
            schema = dict(path_param.constraint)
        elif annotation is Any or annotation is str:
            schema = {"type": "string"}
            if path_param.constraint is not None:
                schema.update(path_param.constraint)
        else:
            schema = self.registry.schema(annotation)
        described: dict[str, Any] = {"name": path_param.name, "in": "path", "required": True}
        if param is not None and param.description:
            described["description"] = param.description
        described["schema"] = schema
        return described

    def wire_parameter(self, source: str, wire_name: str, param: Param) -> dict[str, Any]:
        schema = self.registry.schema(param.annotation)
        if param.default is not REQUIRED:
            has_json, value = self.registry.json_default(param.annotation, param.default)
            if has_json:
                schema["default"] = value
        described: dict[str, Any] = {"name": wire_name, "in": source, "required": param.required}
        if param.description:
            described["description"] = param.description
        described["schema"] = schema
        return described

    def request_body(self, signature: HandlerSignature | None) -> dict[str, Any] | None:
        if signature is None:
            return None
        body = signature.body
        if body is None:
            body = next((p for p in signature.walk() if p.source == "body"), None)
        if body is None:
            return None
        described: dict[str, Any] = {
            "content": {"application/json": {"schema": self.registry.schema(body.annotation)}},
            "required": body.required,
        }
        if body.description:
            described["description"] = body.description
        return described

    # -- responses --------------------------------------------------------

    def responses(
        self,
        info: RouteInfo,
        doc: OperationDoc,
        signature: HandlerSignature | None,
        *,
        validated: bool,
        has_body: bool,
        secured: bool,
        guarded: bool,
    ) -> dict[str, Any]:
        status = doc.status_code or getattr(info, "status_code", None) or 200
        responses: dict[str, Any] = {str(status): self.success(info, signature, status)}
        if secured or guarded:
            responses["401"] = self.problem("Authentication required")
        if guarded:
            responses["403"] = self.problem("Access denied")
        if validated:
            ref: dict[str, Any] = {}
            self.validation_refs.append(ref)
            responses["422"] = {
                "description": "Validation Error",
                "content": {"application/problem+json": {"schema": ref}},
            }
        if has_body:
            responses["415"] = self.problem("The request body is not JSON")
        for code, response in doc.responses.items():
            responses[str(code)] = self.extra_response(code, response)
        return responses

    def success(
        self, info: RouteInfo, signature: HandlerSignature | None, status: int
    ) -> dict[str, Any]:
        described: dict[str, Any] = {"description": "Successful Response"}
        if status in (204, 304) or info.method == "HEAD":
            return described
        model = signature.response_model if signature is not None else None
        if model is None:
            model = getattr(info, "response_model", None)
        if model is not None:
            schema = self.registry.schema(model, "serialization")
        else:
            annotation = _return_annotation(info.handler)
            if annotation is inspect.Parameter.empty:
                schema = {}
            elif _is_response_class(annotation):
                return described  # a Response says its own content type
            else:
                schema = self.registry.schema(annotation, "serialization")
        described["content"] = {"application/json": {"schema": schema}}
        return described

    def problem(self, description: str) -> dict[str, Any]:
        ref: dict[str, Any] = {}
        self.problem_refs.append(ref)
        return {
            "description": description,
            "content": {"application/problem+json": {"schema": ref}},
        }

    def extra_response(self, code: int | str, response: Any) -> dict[str, Any]:
        if isinstance(response, str):
            if str(code).startswith(("4", "5")) or code == "default":
                return self.problem(response)
            return {"description": response}
        if isinstance(response, Mapping):
            described = dict(response)
            described.setdefault("description", "")
            return described
        schema = self.registry.schema(response, "serialization")
        name = getattr(response, "__name__", None) if is_model(response) else None
        return {
            "description": name or "Response",
            "content": {"application/json": {"schema": schema}},
        }


def build_spec(
    routes: Iterable[RouteInfo],
    middleware: Iterable[Any] = (),
    global_guards: Sequence[Any] = (),
    options: SpecOptions | None = None,
    mounts: Iterable[Any] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` and of the ``mounts`` that
    describe themselves, secured as ``middleware`` (the app's middleware
    entries) says."""
    builder = _Builder(routes, middleware, global_guards, options or SpecOptions())
    spec = builder.build()
    merge_mounted(spec, mounts, builder.security)
    return spec


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _reads_the_request(signature: HandlerSignature | None) -> bool:
    """Whether the handler gets the request object (and so may read any body)."""
    if signature is None:
        return True
    return any(param.source == "request" for param in signature.params)
