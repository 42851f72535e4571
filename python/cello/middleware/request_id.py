"""Request IDs: ``X-Request-ID`` on every request and response."""

from __future__ import annotations

from typing import Any

__all__ = ["RequestId"]


class RequestId:
    """Gives every request an ID: the incoming ``X-Request-ID`` when it is a
    usable one (at most 128 visible ASCII characters, sent once), else a new
    UUID v4. Handlers read it as ``request.context["request_id"]``; the
    response carries it in the same header; a mounted ASGI app sees it among
    the request's headers.
    """

    def __init__(self, header: str = "X-Request-ID") -> None:
        if not isinstance(header, str) or not header:
            raise ValueError("RequestId header must be a non-empty header name")
        self.header = header

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "request_id", {"header": self.header}

    def __repr__(self) -> str:
        return f"RequestId(header={self.header!r})"
