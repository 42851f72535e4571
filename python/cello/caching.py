"""``@cache``: marks a route's responses for the response cache."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cello import _cello
from cello._routes import is_async_handler

__all__ = ["cache"]

F = TypeVar("F", bound=Callable[..., Any])

# Visible ASCII but the comma that separates tags in `X-Cache-Tags`.
_TAG = re.compile(r"[\x21-\x2b\x2d-\x7e]+")


@dataclass
class CacheSpec:
    """What ``@cache`` asked for; ``default_ttl`` is filled in by the app
    that registers the route (its cache's ``ttl``) when ``ttl`` is None."""

    ttl: int | None
    tags: list[str]
    default_ttl: int = field(default=300)

    def headers(self) -> list[tuple[str, str]]:
        ttl = self.ttl if self.ttl is not None else self.default_ttl
        marks = [("X-Cache-TTL", str(ttl))]
        if self.tags:
            marks.append(("X-Cache-Tags", ",".join(self.tags)))
        return marks


def check_tags(tags: Iterable[str] | str, what: str) -> list[str]:
    """``tags`` as a list of valid tags (a lone string is one tag)."""
    if isinstance(tags, str):
        tags = [tags]
    elif isinstance(tags, bytes) or not isinstance(tags, Iterable):
        raise ValueError(f"{what} takes a list of tag strings, not {tags!r}")
    checked: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise ValueError(
                f"{what}: {tag!r} is not a tag (visible ASCII characters, no comma or space)"
            )
        if tag not in checked:
            checked.append(tag)
    return checked


def _marked(result: Any, spec: CacheSpec) -> Any:
    # As the documented decorator always did: a str is text here (a route
    # without @cache answers a str as JSON), bytes a binary body.
    if isinstance(result, str):
        response = _cello.Response.text(result)
    elif isinstance(result, (bytes, bytearray, memoryview)):
        response = _cello.Response.binary(bytes(result))
    else:
        response = _cello.as_response(result)
    for name, value in spec.headers():
        response.set_header(name, value)
    return response


def cache(ttl: int | None = None, tags: Iterable[str] | None = None) -> Callable[[F], F]:
    """Caches a route's responses: ``ttl`` seconds (None: the app's cache
    ``ttl``), under ``tags`` that ``app.invalidate_cache(tags)`` clears.

    The handler may be sync or async and return anything a route may; a
    dict becomes JSON, and, unlike an undecorated route's, a str becomes
    ``text/plain`` and bytes ``application/octet-stream``. Its response gets
    ``X-Cache-TTL: <ttl>`` and, with tags, ``X-Cache-Tags: a,b``, which the
    response cache reads. An app that did not call ``enable_caching()``
    caches just its decorated routes, with the default settings.
    """
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise ValueError(f"cache() ttl must be a whole number of seconds > 0, not {ttl!r}")
    spec = CacheSpec(ttl, check_tags(tags or [], "cache() tags"))

    def decorator(handler: F) -> F:
        if not callable(handler):
            raise TypeError(f"@cache decorates a route handler, not {handler!r}")
        if is_async_handler(handler):

            @functools.wraps(handler)
            async def cached_async(*args: Any, **kwargs: Any) -> Any:
                return _marked(await handler(*args, **kwargs), spec)

            wrapper: Any = cached_async
        else:

            @functools.wraps(handler)
            def cached(*args: Any, **kwargs: Any) -> Any:
                return _marked(handler(*args, **kwargs), spec)

            wrapper = cached
        wrapper.__cello_cache__ = spec
        return wrapper  # type: ignore[no-any-return]

    return decorator
