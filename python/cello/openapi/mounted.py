"""Mounted ASGI apps that describe themselves (a FastAPI app's
``app.openapi()``) join the document under their prefix.

Their paths are prefixed; their components keep their names unless one of
the app's own (or an earlier mount's) already holds a different thing
under that name, in which case the newcomer is renamed ``<Name>_<prefix>``
and every ``$ref`` to it follows; a repeated ``operationId`` gets a suffix.
Only OpenAPI 3.1 documents are merged: a 3.0 schema is not a valid 3.1
one. A mounted app that cannot produce its document is logged and left out.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from typing import Any

from cello.openapi.schemas import PROBLEM_SCHEMA
from cello.openapi.security import SecuritySchemes

__all__ = ["merge_mounted"]

log = logging.getLogger("cello.openapi")

_REF = re.compile(r"^#/components/([^/]+)/(.+)$")


def _document_of(app: Any, prefix: str) -> dict[str, Any] | None:
    describe = getattr(app, "openapi", None)
    if not callable(describe):
        return None
    try:
        document = describe()
    except Exception:
        log.warning(
            "OpenAPI: the app mounted at %r failed to describe itself", prefix, exc_info=True
        )
        return None
    if not isinstance(document, dict) or not isinstance(document.get("paths", {}), dict):
        return None
    if not str(document.get("openapi", "")).startswith("3.1."):
        log.warning(
            "OpenAPI: the app mounted at %r describes itself in OpenAPI %s, not 3.1; left out",
            prefix,
            document.get("openapi"),
        )
        return None
    return copy.deepcopy(document)


def _rewrite_refs(node: Any, renamed: dict[tuple[str, str], str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            match = _REF.match(ref)
            key = (match.group(1), match.group(2)) if match else None
            if key is not None and key in renamed:
                node["$ref"] = f"#/components/{key[0]}/{renamed[key]}"
        for value in node.values():
            _rewrite_refs(value, renamed)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renamed)


def _secure(operation: dict[str, Any], ours: list[dict[str, list[str]]]) -> None:
    """Adds the native authentication in front of the app to ``operation``:
    both its own requirement (if any) and one of ours must be met."""
    own = operation.get("security")
    if own:
        operation["security"] = [{**theirs, **mine} for theirs in own for mine in ours]
    else:
        operation["security"] = ours
    operation.setdefault("responses", {}).setdefault(
        "401",
        {
            "description": "Authentication required",
            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
        },
    )


def _merge(
    spec: dict[str, Any], document: dict[str, Any], prefix: str, security: SecuritySchemes
) -> None:
    slug = re.sub(r"\W+", "_", prefix).strip("_") or "mounted"
    components = spec.setdefault("components", {})
    incoming = document.get("components", {})
    renamed: dict[tuple[str, str], str] = {}
    for kind, entries in incoming.items():
        existing = components.get(kind, {})
        for name, value in entries.items():
            if name in existing and existing[name] != value:
                new_name, number = f"{name}_{slug}", 1
                while new_name in existing or new_name in entries:
                    number += 1
                    new_name = f"{name}_{slug}{number}"
                renamed[(kind, name)] = new_name
    _rewrite_refs(document, renamed)
    for kind, entries in incoming.items():
        target = components.setdefault(kind, {})
        for name, value in entries.items():
            target.setdefault(renamed.get((kind, name), name), value)
    operation_ids = {
        operation.get("operationId")
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    default_security = document.get("security")
    for path, item in document.get("paths", {}).items():
        full = prefix + path
        if full in spec["paths"]:
            continue  # a route of the app itself answers there first
        ours = security.requirements(full, guarded=False, mounted=True)
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if default_security is not None:
                operation.setdefault("security", default_security)
            if ours is not None:
                _secure(operation, ours)
            operation_id = operation.get("operationId")
            if operation_id is not None:
                candidate, number = operation_id, 1
                while candidate in operation_ids:
                    number += 1
                    candidate = f"{operation_id}_{number}"
                operation["operationId"] = candidate
                operation_ids.add(candidate)
        spec["paths"][full] = item
    known = {tag["name"] for tag in spec.get("tags", [])}
    used = [
        {"name": name}
        for item in document.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict)
        for name in operation.get("tags", ())
    ]
    for tag in [*document.get("tags", []), *used]:
        if isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag["name"] not in known:
            spec.setdefault("tags", []).append(tag)
            known.add(tag["name"])


def merge_mounted(spec: dict[str, Any], mounts: Iterable[Any], security: SecuritySchemes) -> None:
    """Adds to ``spec`` the document of every mounted app that has one; the
    native authentication layers in front of a mount secure its operations."""
    for mount in mounts:
        document = _document_of(mount.app, mount.prefix)
        if document is not None:
            _merge(spec, document, mount.prefix, security)
    if not spec.get("components"):
        spec.pop("components", None)
