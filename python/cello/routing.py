"""Typed path-parameter constraints.

A constraint makes a route match only when the parameter's text fits; a
value that does not fit makes the request a 404, exactly as if the route did
not exist. Use them in ``constraints=`` or inline (``/items/{id:int}``)::

    @app.get("/items/{id}", constraints={"id": IntConstraint()})
    def item(request): ...

Matching happens in the native router, so a constraint costs no Python call.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AlphaConstraint",
    "AlphanumConstraint",
    "Constraint",
    "IntConstraint",
    "RegexConstraint",
    "UuidConstraint",
]


class Constraint:
    """Base class: ``kind`` names the native check, ``pattern`` feeds regex."""

    kind: str = ""
    pattern: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IntConstraint(Constraint):
    """An optionally signed decimal integer: ``42``, ``-7``."""

    kind = "int"


class UuidConstraint(Constraint):
    """A UUID in canonical 8-4-4-4-12 hexadecimal form."""

    kind = "uuid"


class AlphaConstraint(Constraint):
    """ASCII letters only."""

    kind = "alpha"


class AlphanumConstraint(Constraint):
    """ASCII letters and digits only."""

    kind = "alphanum"


class RegexConstraint(Constraint):
    """The whole value must match ``pattern`` (Rust regex syntax)."""

    kind = "regex"

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("RegexConstraint needs a non-empty pattern string")
        self.pattern = pattern

    def __repr__(self) -> str:
        return f"RegexConstraint({self.pattern!r})"


_KINDS = {"int", "uuid", "alpha", "alphanum"}


def constraint_specs(
    constraints: Mapping[str, Constraint | str] | None,
) -> list[tuple[str, str, str | None]]:
    """Turns ``constraints=`` into ``(param, kind, pattern)`` for the router.

    A plain string is a kind name (``"int"``) or, failing that, a regex.
    """
    specs: list[tuple[str, str, str | None]] = []
    for name, constraint in (constraints or {}).items():
        if isinstance(constraint, Constraint):
            specs.append((name, constraint.kind, constraint.pattern))
        elif isinstance(constraint, str):
            if constraint in _KINDS:
                specs.append((name, constraint, None))
            else:
                specs.append((name, "regex", constraint))
        else:
            raise TypeError(
                f"constraint for {name!r} must be a cello.routing constraint or a str, "
                f"not {type(constraint).__name__}"
            )
    return specs
