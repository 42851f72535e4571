"""Conditional requests: ``ETag`` on whole GET/HEAD bodies and ``304 Not Modified``."""

from __future__ import annotations

from typing import Any

__all__ = ["ETag", "ETagConfig"]


class ETag:
    """Adds an ``ETag`` (the xxh3-128 hash of the body, in hex) to every 200
    response to GET or HEAD whose body is held whole and has none yet, and
    answers ``304 Not Modified`` when the request's ``If-None-Match`` matches
    the response's ETag (weak comparison, ``*`` included), or, without
    ``If-None-Match``, when its ``If-Modified-Since`` is no earlier than the
    response's ``Last-Modified``.

    ``weak=True`` makes the generated tags weak (``W/"..."``). A tag a handler
    or a mounted app set is kept as it is, and still compared.
    """

    def __init__(self, weak: bool = False) -> None:
        if not isinstance(weak, bool):
            raise ValueError(f"ETag weak must be True or False, not {weak!r}")
        self.weak = weak

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "etag", {"weak": self.weak}

    def __repr__(self) -> str:
        return f"ETag(weak={self.weak!r})"


#: The name the configuration reference uses.
ETagConfig = ETag
