"""Response compression: gzip, brotli or zstd, as ``Accept-Encoding`` allows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["CompressionConfig"]

# The codings offered by default, in the order preferred when a client
# weighs them equally (browsers send ``gzip, deflate, br, zstd``): zstd is
# the fastest and smaller than gzip, brotli the smallest for more CPU, gzip
# the one every client understands.
_CODINGS = ("zstd", "br", "gzip")

_LEVELS = {"gzip_level": (1, 9), "brotli_level": (0, 11), "zstd_level": (1, 19)}


def _level(name: str, value: Any) -> int:
    low, high = _LEVELS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")
    return value


class CompressionConfig:
    """Compresses responses for clients that accept it.

    The coding is chosen from the request's ``Accept-Encoding`` (weights,
    ``*`` and ``identity`` honoured; ties go to the order of ``encodings``).
    Text, JSON, XML, JavaScript, SVG and WebAssembly bodies of ``min_size``
    bytes or more are compressed; streamed bodies are compressed chunk by
    chunk, each chunk flushed at once, so server-sent events are not delayed.
    Already-encoded bodies, ranges, ``Cache-Control: no-transform`` responses
    and other media types go out unchanged.

    The levels suit dynamic content; raise them for large static text.
    """

    def __init__(
        self,
        min_size: int = 1024,
        gzip_level: int = 6,
        brotli_level: int = 4,
        zstd_level: int = 3,
        encodings: Iterable[str] = _CODINGS,
    ) -> None:
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
            raise ValueError(f"min_size must be a non-negative number of bytes, not {min_size!r}")
        self.min_size = min_size
        self.gzip_level = _level("gzip_level", gzip_level)
        self.brotli_level = _level("brotli_level", brotli_level)
        self.zstd_level = _level("zstd_level", zstd_level)
        self.encodings = _encodings(encodings)

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "compression", {
            "min_size": self.min_size,
            "gzip_level": self.gzip_level,
            "brotli_level": self.brotli_level,
            "zstd_level": self.zstd_level,
            "encodings": list(self.encodings),
        }

    def __repr__(self) -> str:
        return (
            f"CompressionConfig(min_size={self.min_size}, gzip_level={self.gzip_level}, "
            f"brotli_level={self.brotli_level}, zstd_level={self.zstd_level}, "
            f"encodings={self.encodings!r})"
        )


def _encodings(encodings: Iterable[str]) -> tuple[str, ...]:
    if isinstance(encodings, str):
        # ``encodings="gzip"`` would otherwise be read letter by letter.
        encodings = (encodings,)
    try:
        names = tuple(encodings)
    except TypeError:
        raise ValueError(f"encodings must be a list of codings, not {encodings!r}") from None
    chosen: list[str] = []
    for name in names:
        coding = name.lower() if isinstance(name, str) else name
        if coding not in _CODINGS:
            raise ValueError(
                f"encodings: unknown coding {name!r} (choose from {', '.join(_CODINGS)})"
            )
        if coding not in chosen:
            chosen.append(coding)
    if not chosen:
        raise ValueError("encodings must name at least one coding")
    return tuple(chosen)
