"""Security schemes: which credentials the app's authentication middleware
asks for, and on which operations.

``JwtAuth`` (and ``enable_jwt``) is an HTTP bearer JWT (an API key in its
header or cookie when configured so), ``ApiKeyAuth`` an API key in its
header, ``BasicAuth`` HTTP Basic. A middleware covers the operations under
its prefix (the app's, or a blueprint's), except its skipped paths; every
covering middleware must pass, so an operation's requirement is one of
each. A guarded operation that the middleware under whose prefix it is
skips still requires one of that middleware's schemes, since its guards
need the user that only authentication provides.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cello.middleware.auth import ApiKeyAuth, BasicAuth, JwtAuth

__all__ = ["AuthLayer", "SecuritySchemes"]

Requirement = dict[str, list[str]]


@dataclass(frozen=True)
class AuthLayer:
    """One authentication middleware: where it applies, and the schemes any
    one of which satisfies it (by name, in ``SecuritySchemes.schemes``)."""

    prefix: str
    skip_paths: tuple[str, ...]
    alternatives: tuple[str, ...]
    # A native layer (Rust) also surrounds mounted ASGI apps; a Python one does not.
    native: bool = True

    def reaches(self, path: str) -> bool:
        """Whether ``path`` is under this middleware's prefix."""
        prefix = self.prefix.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def covers(self, path: str) -> bool:
        """Whether this middleware asks ``path`` for credentials."""
        if not self.reaches(path):
            return False
        for skipped in self.skip_paths:
            skipped = skipped.rstrip("/")
            if not skipped or path == skipped or path.startswith(skipped + "/"):
                return False
        return True


def _jwt_schemes(auth: JwtAuth) -> list[tuple[str, dict[str, Any]]]:
    config = auth.config
    schemes: list[tuple[str, dict[str, Any]]] = []
    if config.header_name.lower() == "authorization" and config.header_prefix.lower() == "bearer":
        schemes.append(("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}))
    else:
        described = {"type": "apiKey", "in": "header", "name": config.header_name}
        if config.header_prefix:
            described["description"] = f"A JWT, after '{config.header_prefix} '"
        else:
            described["description"] = "A JWT"
        schemes.append(("jwtHeader", described))
    if config.cookie_name:
        schemes.append(
            (
                "jwtCookie",
                {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": config.cookie_name,
                    "description": "A JWT",
                },
            )
        )
    return schemes


def _schemes_of(middleware: Any) -> list[tuple[str, dict[str, Any]]] | None:
    """The schemes ``middleware`` accepts, or None if it authenticates nothing."""
    if isinstance(middleware, JwtAuth):
        return _jwt_schemes(middleware)
    if isinstance(middleware, ApiKeyAuth):
        return [("apiKeyAuth", {"type": "apiKey", "in": "header", "name": middleware.header})]
    if isinstance(middleware, BasicAuth):
        return [("basicAuth", {"type": "http", "scheme": "basic"})]
    return None


class SecuritySchemes:
    """The app's schemes (``components/securitySchemes``) and the
    authentication middleware that ask for them."""

    def __init__(self, entries: Iterable[Any]) -> None:
        self.schemes: dict[str, dict[str, Any]] = {}
        self.layers: list[AuthLayer] = []
        for entry in entries:
            middleware = entry.native if entry.native is not None else entry.python
            found = _schemes_of(middleware)
            if found is None:
                continue
            names = tuple(self._name(name, scheme) for name, scheme in found)
            skipped = tuple(getattr(middleware, "skip_paths", ()))
            self.layers.append(AuthLayer(entry.prefix, skipped, names, entry.native is not None))

    def _name(self, wanted: str, scheme: dict[str, Any]) -> str:
        """``wanted``, or ``wanted2``... when another middleware already
        took it for a different scheme (two API key headers)."""
        for suffix in itertools.count(1):
            name = wanted if suffix == 1 else f"{wanted}{suffix}"
            if self.schemes.get(name, scheme) == scheme:
                self.schemes[name] = scheme
                return name
        raise AssertionError("unreachable")  # pragma: no cover

    def requirements(
        self, path: str, guarded: bool, mounted: bool = False
    ) -> list[Requirement] | None:
        """The operation's ``security``: any one of the returned requirements
        satisfies it; None when it needs no credentials. For an operation
        of a ``mounted`` ASGI app only the native layers count."""
        covering = [
            layer for layer in self.layers if layer.covers(path) and (layer.native or not mounted)
        ]
        if covering:
            return [
                {name: [] for name in combination}
                for combination in itertools.product(*(layer.alternatives for layer in covering))
            ]
        if guarded:
            # Skipped by the middleware under whose prefix it is, yet its
            # guards need the user that middleware would have found.
            names = [n for layer in self.layers if layer.reaches(path) for n in layer.alternatives]
            if names:
                return [{name: []} for name in dict.fromkeys(names)]
        return None
