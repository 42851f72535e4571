"""The Swagger UI and ReDoc pages, and the assets they load, served from
the files installed with the package (``static/``): nothing comes from a
CDN, so the pages work offline and under a strict Content-Security-Policy
(``script-src 'self'``: the viewers start from a JSON block and a script
file, never from inline code).

Every URL a page holds is relative to the page, so the pages keep working
when the app is served under a prefix (an ASGI ``root_path``, a proxy).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cello._cello import Response

__all__ = [
    "REDOC_ASSETS",
    "SWAGGER_ASSETS",
    "Asset",
    "asset",
    "asset_endpoint",
    "redoc_page",
    "relative_url",
    "swagger_page",
]

STATIC = Path(__file__).resolve().parent / "static"

SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-init.js")
REDOC_ASSETS = ("redoc.standalone.js", "redoc-init.js")

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The asset URLs carry a hash of the content (``?v=``), so a browser may
# keep them for a year: a new version of a file has a new URL.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"

DEFAULT_SWAGGER_PARAMETERS: dict[str, Any] = {
    "deepLinking": True,
    "displayRequestDuration": True,
    # Swagger UI would otherwise send the spec to an online validator.
    "validatorUrl": None,
}
# ReDoc's default fonts are web fonts it does not ship; these need no download.
DEFAULT_REDOC_OPTIONS: dict[str, Any] = {
    "theme": {
        "typography": {
            "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
            "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
            "code": {"fontFamily": "ui-monospace, 'Cascadia Mono', Menlo, Consolas, monospace"},
        }
    }
}


@dataclass(frozen=True)
class Asset:
    name: str
    content: bytes
    content_type: str
    etag: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:16]


@functools.cache
def asset(name: str) -> Asset:
    """One of the vendored files, read once per process."""
    if name not in SWAGGER_ASSETS + REDOC_ASSETS:
        raise KeyError(name)
    content = (STATIC / name).read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:32]
    return Asset(name, content, _TYPES[posixpath.splitext(name)[1]], f'"{digest}"')


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def asset_endpoint(name: str) -> Callable[[Any], Response]:
    """The handler serving the vendored file ``name``."""

    def serve_asset(request: Any) -> Response:
        found = asset(name)
        headers = {
            "ETag": found.etag,
            "Cache-Control": ASSET_CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
        }
        if _matches(request.get_header("if-none-match"), found.etag):
            not_modified = Response.no_content()  # no Content-Type, no body
            not_modified.status = 304
            for header, value in headers.items():
                not_modified.set_header(header, value)
            return not_modified
        return Response(found.content, 200, headers, content_type=found.content_type)

    serve_asset.__name__ = f"openapi_asset_{name.replace('-', '_').replace('.', '_')}"
    return serve_asset


def relative_url(page: str, target: str) -> str:
    """``target`` (an absolute path) as a URL relative to the page at ``page``."""
    directory, name = posixpath.split(target)
    climb = posixpath.relpath(directory or "/", posixpath.dirname(page) or "/")
    parts = [] if climb == "." else [climb]
    url = "/".join([*parts, name]) if name else "".join(f"{p}/" for p in parts)
    # "./" keeps a first segment holding ":" from reading as a URL scheme.
    return url if url.startswith("../") else "./" + url


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "</script>", no "<!--"."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset_url(page: str, assets_url: str, name: str) -> str:
    url = relative_url(page, f"{assets_url.rstrip('/')}/{name}")
    return html.escape(f"{url}?v={asset(name).version}")


_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
"""


def swagger_page(
    *, title: str, page_url: str, spec_url: str, assets_url: str, parameters: Mapping[str, Any]
) -> str:
    """The Swagger UI page at ``page_url`` for the spec at ``spec_url``."""
    config = {
        "url": relative_url(page_url, spec_url),
        "parameters": {**DEFAULT_SWAGGER_PARAMETERS, **parameters},
    }
    css, bundle, init = (_asset_url(page_url, assets_url, name) for name in SWAGGER_ASSETS)
    return (
        _HEAD.format(title=html.escape(f"{title} - Swagger UI"))
        + f'<link rel="stylesheet" href="{css}">\n'
        + "</head>\n<body>\n"
        + '<div id="swagger-ui"></div>\n'
        + f'<script id="cello-openapi-config" type="application/json">{_script_json(config)}'
        + "</script>\n"
        + f'<script src="{bundle}"></script>\n'
        + f'<script src="{init}"></script>\n'
        + "</body>\n</html>\n"
    )


def redoc_page(
    *, title: str, page_url: str, spec_url: str, assets_url: str, options: Mapping[str, Any]
) -> str:
    """The ReDoc page at ``page_url`` for the spec at ``spec_url``."""
    config = {
        "url": relative_url(page_url, spec_url),
        "options": {**DEFAULT_REDOC_OPTIONS, **options},
    }
    bundle, init = (_asset_url(page_url, assets_url, name) for name in REDOC_ASSETS)
    return (
        _HEAD.format(title=html.escape(f"{title} - ReDoc"))
        + "</head>\n<body>\n"
        + '<div id="redoc-container"></div>\n'
        + f'<script id="cello-openapi-config" type="application/json">{_script_json(config)}'
        + "</script>\n"
        + f'<script src="{bundle}"></script>\n'
        + f'<script src="{init}"></script>\n'
        + "</body>\n</html>\n"
    )
