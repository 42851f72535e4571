"""CORS: which other origins' pages may call the app from a browser."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["CorsConfig"]

DEFAULT_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# RFC 9110 tokens: what header names and method names are made of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# scheme://host[:port], nothing after: what a browser sends in `Origin`.
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]+")

# Starlette's (and FastAPI's) names for the same options.
_ALIASES = {
    "allow_origins": "origins",
    "allow_methods": "methods",
    "headers": "allow_headers",
    "allow_credentials": "credentials",
    "allow_origin_regex": "origin_regex",
}


def _strings(option: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable) or isinstance(value, (bytes, dict)):
        raise ValueError(f"CORS option {option!r} must be a list of strings, not {value!r}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"CORS option {option!r} must hold strings, not {item!r}")
    return items


def _tokens(option: str, value: Any, what: str) -> list[str]:
    items = _strings(option, value)
    for item in items:
        if item != "*" and not _TOKEN.fullmatch(item):
            raise ValueError(f"CORS option {option!r}: {item!r} is not a {what}")
    return items


class CorsConfig:
    """Cross-origin resource sharing for the app (``app.use``) or for a
    blueprint's paths (``bp.use``).

    ``origins`` is a list of exact origins (``"https://app.example.com"``)
    or ``["*"]``; None allows any origin unless ``origin_regex`` is given.
    ``origin_regex`` must match a whole origin (Rust ``regex`` syntax).
    ``methods`` defaults to GET, POST, PUT, PATCH, DELETE, HEAD and
    OPTIONS; ``allow_headers`` None allows any request header a preflight
    asks for. ``credentials=True`` lets cookies through; the allowed origin
    is then echoed rather than ``*``. Starlette's names are accepted too:
    ``allow_origins``, ``allow_methods``, ``allow_credentials``,
    ``allow_origin_regex`` (and ``headers`` for ``allow_headers``).
    """

    def __init__(
        self,
        origins: Iterable[str] | str | None = None,
        methods: Iterable[str] | None = None,
        allow_headers: Iterable[str] | None = None,
        expose_headers: Iterable[str] | None = None,
        credentials: bool = False,
        max_age: int = 86400,
        origin_regex: str | None = None,
        **aliases: Any,
    ) -> None:
        given: dict[str, Any] = {
            "origins": origins,
            "methods": methods,
            "allow_headers": allow_headers,
            "credentials": credentials if credentials is not False else None,
            "origin_regex": origin_regex,
        }
        for alias, value in aliases.items():
            if alias not in _ALIASES:
                raise ValueError(f"unknown CORS option {alias!r}")
            name = _ALIASES[alias]
            if given[name] is not None:
                raise ValueError(f"give CORS option {name!r} or {alias!r}, not both")
            given[name] = value

        self.origins = self._origins(given["origins"])
        self.origin_regex = given["origin_regex"]
        if self.origin_regex is not None and not isinstance(self.origin_regex, str):
            raise ValueError(f"CORS option 'origin_regex' must be a str, not {self.origin_regex!r}")
        self.methods = [
            m.upper()
            for m in _tokens(
                "methods",
                DEFAULT_METHODS if given["methods"] is None else given["methods"],
                "method",
            )
        ]
        headers = given["allow_headers"]
        self.allow_headers = (
            None if headers is None else _tokens("allow_headers", headers, "header name")
        )
        self.expose_headers = _tokens("expose_headers", expose_headers or [], "header name")
        self.credentials = False if given["credentials"] is None else given["credentials"]
        if not isinstance(self.credentials, bool):
            raise ValueError(
                f"CORS option 'credentials' must be True or False, not {self.credentials!r}"
            )
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(
                f"CORS option 'max_age' must be a number of seconds >= 0, not {max_age!r}"
            )
        self.max_age = max_age

    @staticmethod
    def _origins(value: Any) -> list[str] | None:
        if value is None:
            return None
        origins = _strings("origins", value)
        for origin in origins:
            if origin not in ("*", "null") and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS option 'origins': {origin!r} is not an origin "
                    "(scheme://host[:port], with no path or trailing slash)"
                )
        return origins

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "cors", {
            "origins": self.origins,
            "origin_regex": self.origin_regex,
            "methods": self.methods,
            "allow_headers": self.allow_headers,
            "expose_headers": self.expose_headers,
            "credentials": self.credentials,
            "max_age": self.max_age,
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._layer()[1].items())
        return f"CorsConfig({fields})"
