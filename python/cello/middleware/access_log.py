"""Access logging: one line per request on standard output, in every door."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["FORMATS", "AccessLog", "LoggingConfig"]

#: The line formats ``format=`` accepts.
FORMATS = ("text", "json")


class AccessLog:
    """Writes one line per request to standard output, from a thread of its
    own so no request waits on the terminal or a pipe.

    A line holds the time, the client's address, the method, the path and
    query as sent, the HTTP version, the status, the body bytes sent, the
    duration and the request ID (when ``RequestId`` gave one). A streamed
    body is logged when it ends, or as aborted when the client leaves first.

    ``format`` is ``"text"`` or ``"json"`` (one JSON object per line).
    Requests to ``skip_paths`` and the paths below them are not logged.
    """

    def __init__(
        self, format: str = "text", skip_paths: Iterable[str] = ("/health", "/metrics")
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"AccessLog format must be 'text' or 'json', not {format!r}")
        if isinstance(skip_paths, str):
            raise ValueError("AccessLog skip_paths takes a list of paths, not one string")
        paths = tuple(skip_paths)
        for path in paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(
                    f"AccessLog skip_paths takes paths starting with '/', not {path!r}"
                )
        self.format = format
        self.skip_paths = paths

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "logging", {"format": self.format, "skip_paths": list(self.skip_paths)}

    def __repr__(self) -> str:
        return f"AccessLog(format={self.format!r}, skip_paths={self.skip_paths!r})"


#: The name the configuration reference uses.
LoggingConfig = AccessLog
