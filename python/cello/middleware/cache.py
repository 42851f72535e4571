"""Response caching: whole GET responses kept in memory and served again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["CacheConfig"]

DEFAULT_TTL = 300
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024
_METHODS = ("GET", "HEAD")


def _positive(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"cache option {option!r} must be a whole number > 0, not {value!r}")
    return value


def _strings(option: str, value: Any) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"cache option {option!r} must be a list of strings, not {value!r}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"cache option {option!r} must hold strings, not {item!r}")
    return items


class CacheConfig:
    """The response cache (``app.enable_caching(config=...)``, ``app.use``).

    ``ttl`` is how long a response is kept, in seconds, unless the route's
    ``@cache(ttl=...)`` or its own ``Cache-Control`` says less. ``methods``
    are the methods served from the cache: GET and HEAD (HEAD is answered
    from GET's entry). ``exclude_paths`` (default ``/health`` and
    ``/metrics``) are never cached, each with the paths below it. The cache
    holds at most ``max_entries`` responses and ``max_bytes`` bytes, evicting
    the least recently used; a response over ``max_entry_bytes`` is not
    stored. ``key_by_user=True`` keeps a copy per authenticated user
    (``request.context["user"]``), so requests with credentials are cached
    too; otherwise they bypass the cache. See docs/caching.md.
    """

    def __init__(
        self,
        ttl: int = DEFAULT_TTL,
        methods: Iterable[str] | None = None,
        exclude_paths: Iterable[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        key_by_user: bool = False,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    ) -> None:
        self.ttl = _positive("ttl", ttl)
        if methods is None:
            self.methods = list(_METHODS)
        else:
            self.methods = []
            for method in _strings("methods", methods):
                if method.upper() not in _METHODS:
                    raise ValueError(
                        f"cache option 'methods' takes GET and HEAD only, not {method!r}"
                    )
                if method.upper() not in self.methods:
                    self.methods.append(method.upper())
            if "GET" not in self.methods:
                raise ValueError(
                    "cache option 'methods' must include GET: only GET responses are "
                    "stored, and HEAD is answered from them"
                )
        if exclude_paths is None:
            self.exclude_paths = ["/health", "/metrics"]
        else:
            self.exclude_paths = _strings("exclude_paths", exclude_paths)
            for path in self.exclude_paths:
                if not path.startswith("/"):
                    raise ValueError(
                        f"cache option 'exclude_paths' takes paths starting with '/', not {path!r}"
                    )
        self.max_bytes = _positive("max_bytes", max_bytes)
        self.max_entries = _positive("max_entries", max_entries)
        self.max_entry_bytes = _positive("max_entry_bytes", max_entry_bytes)
        if not isinstance(key_by_user, bool):
            raise ValueError(
                f"cache option 'key_by_user' must be True or False, not {key_by_user!r}"
            )
        self.key_by_user = key_by_user
        # Set for the cache `@cache` enables on its own: it then stores only
        # the responses of decorated routes.
        self._marked_only = False

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "cache", {
            "ttl": self.ttl,
            "methods": self.methods,
            "exclude_paths": self.exclude_paths,
            "max_bytes": self.max_bytes,
            "max_entries": self.max_entries,
            "max_entry_bytes": self.max_entry_bytes,
            "key_by_user": self.key_by_user,
            "marked_only": self._marked_only,
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._layer()[1].items() if k != "marked_only")
        return f"CacheConfig({fields})"
