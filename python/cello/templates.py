"""Templates: ``MiniJinjaEngine`` (Jinja2 syntax, rendered in Rust by
``minijinja``) and ``TemplateEngine`` (plain ``{{ var }}`` substitution).

```python
app = App()
app.enable_templates("templates")

@app.get("/")
def index(request):
    return Response.html(app.render("index.html", {"user": "Ada"}))
```

See ``docs/templates.md``.
"""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cello._cello import MiniJinjaEngine, dumps

__all__ = [
    "Markup",
    "MiniJinjaEngine",
    "TemplateEngine",
    "TemplateError",
    "TemplateNotFound",
    "TemplateSyntaxError",
    "UndefinedError",
    "csrf_globals",
]


class TemplateError(Exception):
    """A template failed to load or render.

    ``name`` is the template where it went wrong (``"<string>"`` for
    ``render_string`` sources), ``line`` its line (None when unknown) and
    ``message`` the text without the class name.
    """

    def __init__(self, message: str, name: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.line = line


class TemplateNotFound(TemplateError, LookupError):
    """No template of that name in the template directory (or the name
    tried to leave it: ``..`` and absolute paths are never loaded)."""


class TemplateSyntaxError(TemplateError):
    """The template source does not parse."""


class UndefinedError(TemplateError):
    """An undefined variable was used where that is an error (always with
    ``strict_undefined=True``; also calling or indexing an undefined value)."""


class Markup(str):
    """A string of HTML that auto-escaping leaves alone.

    Anything with an ``__html__`` method (``markupsafe.Markup`` included) is
    treated the same way.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)

    @classmethod
    def escape(cls, text: Any) -> Markup:
        """``text`` with ``& < > " '`` escaped (unless it is already markup)."""
        if hasattr(text, "__html__"):
            return cls(text.__html__())
        return cls(html.escape(str(text), quote=True))


def csrf_globals() -> dict[str, Any]:
    """``csrf_input(request)`` and ``csrf_meta(request)`` for templates:
    the hidden form field and the ``<meta>`` tag carrying this client's CSRF
    token (``app.enable_csrf()`` must be on for the request)."""
    from cello.middleware.csrf import csrf_input, csrf_meta

    def template_csrf_input(request: Any) -> Markup:
        return Markup(csrf_input(request))

    def template_csrf_meta(request: Any) -> Markup:
        return Markup(csrf_meta(request))

    return {"csrf_input": template_csrf_input, "csrf_meta": template_csrf_meta}


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _substitute(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return dumps(value).decode()
    return str(value)


class TemplateEngine:
    """The simple engine: ``{{ var }}`` (or ``{{var}}``) becomes the
    context's ``var``: strings as they are, numbers as written, bools as
    ``true``/``false``, None as nothing, dicts and lists as compact JSON.

    Nothing else is interpreted, nothing is escaped, and a placeholder whose
    name is not in the context stays as it is. For loops, inheritance and
    HTML escaping use ``MiniJinjaEngine``.
    """

    def __init__(self, template_dir: str | os.PathLike[str] = "templates") -> None:
        self._dir = Path(template_dir)
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def template_dir(self) -> str:
        return str(self._dir)

    def render(self, name: str, ctx: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """Renders the file ``name`` under ``template_dir`` (read once, then cached)."""
        return self.render_string(self._source(name), ctx, **kwargs)

    def render_string(self, src: str, ctx: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """Substitutes the placeholders of ``src``."""
        context = {**(ctx or {}), **kwargs}

        def replace(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in context:
                return match.group(0)
            return _substitute(context[key])

        return _PLACEHOLDER.sub(replace, src)

    def clear_cache(self) -> None:
        """Forgets the files read so far: the next render reads them again."""
        with self._lock:
            self._cache.clear()

    def _source(self, name: str) -> str:
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        path = self._resolve(name)
        try:
            source = path.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise TemplateNotFound(f"template {name!r} does not exist", name) from None
        with self._lock:
            self._cache[name] = source
        return source

    def _resolve(self, name: str) -> Path:
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith("/") or any(p in ("..", "") for p in parts):
            raise TemplateNotFound(f"template {name!r} does not exist", name)
        return self._dir.joinpath(*parts)

    def __repr__(self) -> str:
        return f"TemplateEngine(template_dir={self.template_dir!r})"
