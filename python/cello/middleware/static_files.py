"""Static files, served from Rust without entering Python."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["StaticFilesConfig"]

# The impl's positional order after the first two arguments.
_LATER_POSITIONS = (
    "index_file",
    "enable_etag",
    "enable_last_modified",
    "cache_control",
    "directory_listing",
)

_UNSET: Any = object()


class StaticFilesConfig:
    """Serves the files under a directory at a URL prefix.

    Both documented forms work: ``StaticFilesConfig(root, prefix="/static",
    ...)`` and ``StaticFilesConfig(url_path, root_dir)``. Given positionally,
    the argument that starts with ``/`` and is not an existing directory is
    the prefix; when both start with ``/``, the existing directory is the
    root (``"/"`` itself is always the prefix). ``root_dir=``/``directory=``
    and ``url_path=`` name them without guessing. The root is resolved
    (symlinks followed) once, here; a relative root is taken from the
    current directory.

    ``cache_control`` (and ``cache_str()``) takes a duration (``"1h"``,
    ``"30s"``, ``"7d"``, ``"1y"``, or bare seconds), sent as ``public,
    max-age=N``, or any other ``Cache-Control`` value as it is;
    ``cache_max_age=N`` is the same as the duration ``N`` seconds.

    The builder methods change the config and return it, so they chain:
    ``StaticFilesConfig("/assets", "public").cache_str("1d").precompressed()``.
    """

    def __init__(
        self,
        *args: Any,
        root: str | os.PathLike[str] | None = None,
        prefix: str | None = None,
        index_file: str | None = _UNSET,
        enable_etag: bool = _UNSET,
        enable_last_modified: bool = _UNSET,
        cache_control: str | None = _UNSET,
        directory_listing: bool = _UNSET,
        directory: str | os.PathLike[str] | None = None,
        root_dir: str | os.PathLike[str] | None = None,
        url_path: str | None = None,
        cache_max_age: int | None = None,
    ) -> None:
        if len(args) > 2 + len(_LATER_POSITIONS):
            raise TypeError(
                f"StaticFilesConfig takes at most {2 + len(_LATER_POSITIONS)} "
                f"positional arguments ({len(args)} given)"
            )
        later = {
            "index_file": index_file,
            "enable_etag": enable_etag,
            "enable_last_modified": enable_last_modified,
            "cache_control": cache_control,
            "directory_listing": directory_listing,
        }
        for name, value in zip(_LATER_POSITIONS, args[2:], strict=False):
            if later[name] is not _UNSET:
                raise TypeError(f"StaticFilesConfig got two values for {name!r}")
            later[name] = value

        given_root = _one_of("root", root=root, directory=directory, root_dir=root_dir)
        given_prefix = _one_of("prefix", prefix=prefix, url_path=url_path)
        positional = list(args[:2])
        named = [n for n, v in (("root", given_root), ("prefix", given_prefix)) if v is not None]
        if len(positional) + len(named) > 2:
            raise TypeError(
                f"StaticFilesConfig got the {' and '.join(named)} both by position and by name"
            )
        if len(positional) == 2:
            given_root, given_prefix = _order(positional[0], positional[1])
        elif positional and given_root is None:
            given_root = positional[0]
        elif positional:
            given_prefix = positional[0]
        if given_root is None:
            raise ValueError("StaticFilesConfig needs a root directory (root= or root_dir=)")

        self.root = _resolve_root(given_root)
        self.prefix = _check_prefix("/static" if given_prefix is None else given_prefix)
        self.index_file: str | None = None
        if later["index_file"] is _UNSET:
            self.index("index.html")
        elif later["index_file"] is not None:
            self.index(later["index_file"])
        self.enable_etag = _flag("enable_etag", later["enable_etag"], True)
        self.enable_last_modified = _flag(
            "enable_last_modified", later["enable_last_modified"], True
        )
        self.directory_listing = _flag("directory_listing", later["directory_listing"], False)
        self.cache_control: str | None = None
        literal = None if later["cache_control"] is _UNSET else later["cache_control"]
        if literal is not None and cache_max_age is not None:
            raise ValueError("StaticFilesConfig takes cache_control or cache_max_age, not both")
        if literal is not None:
            self.cache_str(literal)
        if cache_max_age is not None:
            if (
                isinstance(cache_max_age, bool)
                or not isinstance(cache_max_age, int)
                or cache_max_age < 0
            ):
                raise ValueError(
                    f"cache_max_age must be a non-negative number of seconds, not {cache_max_age!r}"
                )
            self.cache_control = f"public, max-age={cache_max_age}"
        self.serve_precompressed = False
        self.headers: list[tuple[str, str]] = []
        self.hidden_patterns: list[str] = []

    # -- builders ------------------------------------------------------------

    def cache_str(self, value: str) -> StaticFilesConfig:
        """``Cache-Control`` for every file: a duration (``"1h"``) or a literal value."""
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"cache_control must be a duration or a header value, not {value!r}")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"cache_control must not contain line breaks: {value!r}")
        self.cache_control = value
        return self

    def etag(self, enabled: bool = True) -> StaticFilesConfig:
        """Sends a strong ``ETag`` (and answers ``If-None-Match`` with 304)."""
        self.enable_etag = _flag("etag", enabled, True)
        return self

    def dir_listing(self, enabled: bool = True) -> StaticFilesConfig:
        """Lists directories that have no index file."""
        self.directory_listing = _flag("dir_listing", enabled, True)
        return self

    def index(self, name: str = "index.html") -> StaticFilesConfig:
        """The file a directory's URL serves."""
        if (
            not isinstance(name, str)
            or not name
            or name.startswith(".")
            or "/" in name
            or "\\" in name
        ):
            raise ValueError(f"index_file must be a plain file name, not {name!r}")
        self.index_file = name
        return self

    def no_index(self) -> StaticFilesConfig:
        """Directories serve no index file."""
        self.index_file = None
        return self

    def precompressed(self, enabled: bool = True) -> StaticFilesConfig:
        """Serves ``file.br`` or ``file.gz``, when stored next to ``file``, to
        clients that accept Brotli or gzip."""
        self.serve_precompressed = _flag("precompressed", enabled, True)
        return self

    def header(self, name: str, value: str) -> StaticFilesConfig:
        """Adds a header to every file response."""
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise ValueError(f"header() takes a name and a value as str, not {name!r}, {value!r}")
        self.headers.append((name, value))
        return self

    def hide_pattern(self, pattern: str) -> StaticFilesConfig:
        """Never serves files matching the glob ``pattern`` (``*.bak``,
        ``drafts/**``); dotfiles are never served."""
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"hide_pattern() takes a non-empty glob, not {pattern!r}")
        self.hidden_patterns.append(pattern)
        return self

    # -- the native layer ----------------------------------------------------

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "static_files", {
            "root": self.root,
            "prefix": self.prefix,
            "index_file": self.index_file,
            "etag": self.enable_etag,
            "last_modified": self.enable_last_modified,
            "cache_control": self.cache_control,
            "directory_listing": self.directory_listing,
            "precompressed": self.serve_precompressed,
            "headers": list(self.headers),
            "hide": list(self.hidden_patterns),
        }

    def __repr__(self) -> str:
        return f"StaticFilesConfig(root={self.root!r}, prefix={self.prefix!r})"


def _one_of(option: str, **aliases: Any) -> Any:
    given = {name: value for name, value in aliases.items() if value is not None}
    if len(given) > 1:
        names = " and ".join(f"{name}=" for name in given)
        raise TypeError(f"StaticFilesConfig got the {option} twice: {names}")
    return next(iter(given.values()), None)


def _is_dir(value: Any) -> bool:
    return isinstance(value, str | os.PathLike) and os.path.isdir(value)


def _order(first: Any, second: Any) -> tuple[Any, Any]:
    """``(root, prefix)`` from two positional arguments in either order: the
    one that starts with ``/`` and is not an existing directory is the
    prefix; failing that, the one that is an existing directory is the root."""
    # "/" is a directory too, but nobody serves the whole file system: as
    # one of two arguments it is the prefix.
    first_dir, second_dir = first != "/" and _is_dir(first), second != "/" and _is_dir(second)
    first_prefix = isinstance(first, str) and first.startswith("/") and not first_dir
    second_prefix = isinstance(second, str) and second.startswith("/") and not second_dir
    if second_prefix and not first_prefix:
        return first, second
    if first_prefix and not second_prefix:
        return second, first
    if first_dir != second_dir:
        return (first, second) if first_dir else (second, first)
    shown = f"StaticFilesConfig({first!r}, {second!r})"
    if first_dir:
        raise ValueError(
            f"{shown}: both are existing directories, so either could be the root; "
            "pass root_dir= and url_path="
        )
    for value in (first, second):
        if isinstance(value, str | os.PathLike) and os.path.exists(value):
            raise ValueError(f"{shown}: {os.fspath(value)!r} is not a directory")
    raise ValueError(f"{shown}: neither is an existing directory to serve")


def _resolve_root(root: Any) -> str:
    if not isinstance(root, str | os.PathLike):
        raise ValueError(f"the static files root must be a path, not {type(root).__name__}")
    resolved = Path(root).resolve()
    if not resolved.exists():
        raise ValueError(f"the static files root {os.fspath(root)!r} does not exist")
    if not resolved.is_dir():
        raise ValueError(f"the static files root {os.fspath(root)!r} is not a directory")
    return str(resolved)


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(
            f"the static files prefix must be a URL path starting with '/', not {prefix!r}"
        )
    trimmed = prefix.rstrip("/")
    segments = trimmed.split("/")[1:]
    if any(s in ("", ".", "..") or any(c in s for c in "%\\?#") for s in segments):
        raise ValueError(
            f"the static files prefix {prefix!r} must be a plain path "
            "(no empty, '.' or '..' segments, no %, \\, ? or #)"
        )
    return trimmed or "/"


def _flag(option: str, value: Any, default: bool) -> bool:
    if value is _UNSET:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{option} must be True or False, not {value!r}")
    return value
