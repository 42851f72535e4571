"""The path lists middleware options take (``exempt_paths=``...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def path_list(value: Any, option: str) -> list[str]:
    """``value`` (None, one path, or an iterable of paths) as a list;
    ``option`` names it in the error for anything else."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"{option} must be a list of paths, not {value!r}")
    paths = list(items)
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{option} takes paths starting with '/', not {path!r}")
    return paths
