"""JSON Schemas for the Python types a spec mentions.

A spec asks for the schema of many annotations (path and query parameters,
request bodies, response models). Each request gets a placeholder dict at
once; ``resolve()`` then fills them all in one pass, so that pydantic names
every model once, in one ``components/schemas`` namespace: two models with
the same class name get distinct names, and a model whose validation and
serialisation schemas differ gets ``Name-Input`` and ``Name-Output``.

Without pydantic installed, the standard scalar and container types still
get their schemas; anything else is described as ``{}`` (any value).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PROBLEM_SCHEMA", "REF_TEMPLATE", "SchemaRegistry", "is_model"]

REF_TEMPLATE = "#/components/schemas/{model}"

Mode = Literal["validation", "serialization"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 7807 problem: the body of every error response.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "title": "Type"},
        "title": {"type": "string", "title": "Title"},
        "status": {"type": "integer", "title": "Status"},
        "detail": {"title": "Detail"},
        "instance": {"type": "string", "title": "Instance"},
    },
    "required": ["type", "title", "status"],
}

try:  # pydantic is optional: the spec is still useful without it.
    import pydantic
    from pydantic.json_schema import GenerateJsonSchema
except ImportError:  # pragma: no cover - the test environment has pydantic
    pydantic = None  # type: ignore[assignment]
    GenerateJsonSchema = None  # type: ignore[assignment,misc]


def is_model(annotation: Any) -> bool:
    """Whether ``annotation`` is a pydantic model class."""
    return (
        pydantic is not None
        and isinstance(annotation, type)
        and issubclass(annotation, pydantic.BaseModel)
    )


_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "binary"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    datetime.timedelta: {"type": "string", "format": "duration"},
    decimal.Decimal: {"anyOf": [{"type": "number"}, {"type": "string"}]},
    dict: {"type": "object"},
    list: {"type": "array"},
    type(None): {"type": "null"},
}


def basic_schema(annotation: Any) -> dict[str, Any]:
    """The schema of a standard type, without pydantic; ``{}`` when unknown."""
    if annotation is Any or annotation is typing.Any:
        return {}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return basic_schema(args[0])
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [basic_schema(arg) for arg in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, set, frozenset, tuple) or (
        isinstance(origin, type) and issubclass(origin, (list, set, frozenset))
    ):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array"}
        schema: dict[str, Any] = {"type": "array"}
        if args:
            schema["items"] = basic_schema(args[0])
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = basic_schema(args[1])
        return schema
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    if not isinstance(annotation, type):
        return {}
    # bool before int: bool is an int subclass.
    for known in (bool, *_SCALARS):
        if issubclass(annotation, known):
            return dict(_SCALARS[known])
    return {}


@dataclass
class _Request:
    placeholder: dict[str, Any]
    annotation: Any
    mode: Mode


class SchemaRegistry:
    """Hands out schema placeholders, then fills them all at once."""

    def __init__(self) -> None:
        self._requests: list[_Request] = []
        self.components: dict[str, Any] = {}

    def schema(self, annotation: Any, mode: Mode = "validation") -> dict[str, Any]:
        """A dict that ``resolve()`` fills with ``annotation``'s schema (or
        a ``$ref`` to it in ``components``)."""
        placeholder: dict[str, Any] = {}
        self._requests.append(_Request(placeholder, annotation, mode))
        return placeholder

    def json_default(self, annotation: Any, value: Any) -> tuple[bool, Any]:
        """``value`` as JSON for a schema's ``default``: (True, json), or
        (False, None) when it has no JSON form or does not fit the type
        (``limit: int = None``), since a document's defaults must match
        their schemas."""
        if pydantic is not None:
            try:
                adapter = pydantic.TypeAdapter(annotation)
                return True, adapter.dump_python(adapter.validate_python(value), mode="json")
            except Exception:
                return False, None
        if value is None or isinstance(value, (str, int, float, bool)):
            return True, value
        if isinstance(value, enum.Enum) and isinstance(value.value, (str, int, float)):
            return True, value.value
        return False, None

    def resolve(self) -> dict[str, Any]:
        """Fills every placeholder; returns the ``components/schemas`` they refer to."""
        requests, self._requests = self._requests, []
        if pydantic is None:
            for request in requests:
                request.placeholder.update(basic_schema(request.annotation))
            return self.components
        adapted: list[tuple[_Request, Any]] = []
        for request in requests:
            try:
                adapted.append((request, pydantic.TypeAdapter(request.annotation).core_schema))
            except Exception:
                # A type pydantic cannot describe (an arbitrary class): the
                # standard types still get theirs.
                request.placeholder.update(basic_schema(request.annotation))
        try:
            self._generate(adapted)
        except Exception:
            # One unrepresentable type (a model with a callable field) must
            # not cost the rest their schemas: describe them one by one.
            for entry in adapted:
                try:
                    self._generate([entry])
                except Exception:
                    entry[0].placeholder.update(basic_schema(entry[0].annotation))
        return self.components

    def _generate(self, adapted: list[tuple[_Request, Any]]) -> None:
        generator = GenerateJsonSchema(ref_template=REF_TEMPLATE)
        inputs = [(index, request.mode, core) for index, (request, core) in enumerate(adapted)]
        by_key, definitions = generator.generate_definitions(inputs)
        for index, (request, _) in enumerate(adapted):
            request.placeholder.update(by_key[(index, request.mode)])
        for name, definition in definitions.items():
            self.components.setdefault(name, definition)
