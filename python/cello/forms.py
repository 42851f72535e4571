"""Forms: ``FormData`` and ``UploadedFile``, what ``request.form()`` and
``request.files()`` give.

The parsing happens in Rust (``cello._cello``, with ``multer`` for multipart
bodies); this module only shapes the result. A ``FormData`` is a ``dict`` of
the last value per name, so code written when ``form()`` returned a plain
dict keeps working, and it is also awaitable, so ``await request.form()``
(Starlette, FastAPI) works too: the body is already parsed when it returns.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, SupportsIndex, overload

from cello.exceptions import BadRequest

__all__ = ["FormData", "UploadedFile", "UploadedFiles"]


class _Size(int):
    """A file size that is also callable: ``file.size`` and ``file.size()``."""

    def __call__(self) -> int:
        return int(self)


class UploadedFile:
    """One uploaded file, stored in a private temporary directory.

    ``filename`` is what the client claimed and may be anything, ``../``
    included: it is never used as a path. Write the file where you decide
    with ``save(path)``. The temporary file is removed once the request is
    over and nothing refers to this object any more.
    """

    __slots__ = ("_size", "_store", "content_type", "filename", "name", "temp_path")

    def __init__(
        self,
        name: str,
        filename: str,
        content_type: str | None,
        temp_path: str,
        size: int,
        store: Any = None,
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.temp_path = temp_path
        self._size = _Size(size)
        # Keeps the upload directory (and so this file) alive.
        self._store = store

    @property
    def size(self) -> _Size:
        """The size in bytes (``file.size`` or ``file.size()``)."""
        return self._size

    def read(self) -> bytes:
        """The whole content."""
        return Path(self.temp_path).read_bytes()

    def open(self) -> BinaryIO:
        """The file opened for reading, to process a large upload piece by
        piece (``with upload.open() as f: ...``)."""
        return open(self.temp_path, "rb")

    def read_text(self, encoding: str = "utf-8") -> str:
        """The content decoded; content that does not decode is the client's
        fault, so it raises ``BadRequest`` (400)."""
        try:
            return self.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise BadRequest(f"uploaded file {self.name!r} is not valid {encoding}") from exc

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Copies the file to ``path`` (a file path of your choosing; an
        existing file is replaced) and returns it. Hard-links when it can, so
        saving a large file on the same file system costs nothing. The saved
        file is readable by the server's user only (mode 0600)."""
        target = Path(path)
        if target.is_file() or target.is_symlink():
            target.unlink()
        try:
            os.link(self.temp_path, target)
        except OSError:
            shutil.copyfile(self.temp_path, target)
            os.chmod(target, 0o600)  # as the linked file: readable by this user only
        return target

    def extension(self) -> str | None:
        """The client's file name's extension without the dot, lower-cased
        (``"png"``), or None when it has none."""
        base = self.filename.replace("\\", "/").rsplit("/", 1)[-1]
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem or not ext:
            return None
        return ext.lower()

    def __repr__(self) -> str:
        return (
            f"UploadedFile(name={self.name!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={int(self._size)})"
        )


class _Ready:
    """Makes a result awaitable: ``await`` gives it back at once."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()
        return self


class UploadedFiles(list[UploadedFile], _Ready):
    """``request.files()``: the uploaded files, in arrival order. A list
    (``for f in files``, ``files[0]``, ``len(files)``) that also answers by
    field name like a mapping: ``files["doc"]`` and ``files.get("doc")`` give
    the last file sent under that name, ``"doc" in files`` tests for one,
    ``getlist``, ``keys()`` and ``items()`` work as on ``FormData``.
    Awaitable."""

    __slots__ = ()

    @overload  # type: ignore[override]
    def __getitem__(self, key: str) -> UploadedFile: ...
    @overload
    def __getitem__(self, key: SupportsIndex) -> UploadedFile: ...
    @overload
    def __getitem__(self, key: slice) -> list[UploadedFile]: ...
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            found = self.get(key)
            if found is None:
                raise KeyError(key)
            return found
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return any(f.name == key for f in self)
        return super().__contains__(key)

    def get(self, name: str, default: Any = None) -> Any:
        """The last file sent under ``name``, or ``default``."""
        found = self.getlist(name)
        return found[-1] if found else default

    def getlist(self, name: str) -> list[UploadedFile]:
        return [f for f in self if f.name == name]

    def keys(self) -> list[str]:
        """The field names, each once, in order."""
        return list(dict.fromkeys(f.name for f in self))

    def items(self) -> list[tuple[str, UploadedFile]]:
        """``(name, file)`` for each name's last file."""
        return [(name, self[name]) for name in self.keys()]


class FormData(dict[str, "str | UploadedFile"], _Ready):
    """A parsed form: a ``dict`` of the last value per name (a ``str`` for a
    field, an ``UploadedFile`` for a file), every pair kept in arrival order.
    Awaitable, so both ``request.form()`` and ``await request.form()`` work.
    """

    __slots__ = ("_items",)

    def __init__(
        self,
        items: Mapping[str, str | UploadedFile] | Iterable[tuple[str, str | UploadedFile]] = (),
    ) -> None:
        self._items = list(items.items() if isinstance(items, Mapping) else items)
        super().__init__(self._items)

    # Starlette's multi-dict interface.

    def getlist(self, name: str) -> list[str | UploadedFile]:
        """Every value sent under ``name``, in order."""
        return [v for k, v in self._items if k == name]

    def multi_items(self) -> list[tuple[str, str | UploadedFile]]:
        """Every (name, value) pair, repeats included, in order."""
        return list(self._items)

    # The documented Cello interface.

    def get_or(self, name: str, default: Any = None) -> Any:
        """The text field ``name``, or ``default``."""
        value = self.get(name)
        return value if isinstance(value, str) else default

    def get_file(self, name: str) -> UploadedFile | None:
        """The (last) file sent under ``name``, or None."""
        files = self.get_files(name)
        return files[-1] if files else None

    def get_files(self, name: str | None = None) -> list[UploadedFile]:
        """The files sent under ``name`` (every file without a name)."""
        return [
            v for k, v in self._items if isinstance(v, UploadedFile) and (name is None or k == name)
        ]

    def field_names(self) -> list[str]:
        """The names of the text fields, each once, in order."""
        return list(dict.fromkeys(k for k, v in self._items if isinstance(v, str)))

    def file_names(self) -> list[str]:
        """The names of the file fields, each once, in order."""
        return list(dict.fromkeys(k for k, v in self._items if isinstance(v, UploadedFile)))

    def has_field(self, name: str) -> bool:
        return any(k == name and isinstance(v, str) for k, v in self._items)

    def has_file(self, name: str) -> bool:
        return any(k == name and isinstance(v, UploadedFile) for k, v in self._items)

    def field_count(self) -> int:
        """How many text fields were sent (repeats included)."""
        return sum(1 for _, v in self._items if isinstance(v, str))

    def file_count(self) -> int:
        """How many files were sent (repeats included)."""
        return sum(1 for _, v in self._items if isinstance(v, UploadedFile))

    def _files(self) -> UploadedFiles:
        return UploadedFiles(self.get_files())


def _from_fields(pairs: list[tuple[str, str]]) -> FormData:
    """A URL-encoded form (called from Rust)."""
    return FormData(pairs)


def _from_parts(parts: list[tuple[Any, ...]], store: Any) -> FormData:
    """A multipart form (called from Rust): ``(name, value)`` for a field,
    ``(name, filename, content_type, temp_path, size)`` for a file."""
    items: list[tuple[str, str | UploadedFile]] = []
    for part in parts:
        if len(part) == 2:
            items.append((part[0], part[1]))
        else:
            name, filename, content_type, temp_path, size = part
            items.append((name, UploadedFile(name, filename, content_type, temp_path, size, store)))
    return FormData(items)
