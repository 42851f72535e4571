"""OpenAPI 3.1 for Cello apps: ``/openapi.json`` built from the registered
routes, and the Swagger UI (``/docs``) and ReDoc (``/redoc``) pages served
from assets installed with the package.

``app.enable_openapi(...)`` registers the routes; ``app.openapi()`` returns
the document. See docs/openapi.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cello._cello import Response
from cello.openapi.operations import OperationDoc, operation, operation_doc
from cello.openapi.pages import (
    REDOC_ASSETS,
    SWAGGER_ASSETS,
    asset_endpoint,
    redoc_page,
    swagger_page,
)
from cello.openapi.spec import OPENAPI_VERSION, SpecOptions, build_spec

__all__ = [
    "OPENAPI_VERSION",
    "OpenAPIDocs",
    "OperationDoc",
    "SpecOptions",
    "build_spec",
    "operation",
    "operation_doc",
]

Endpoint = Callable[[Any], Response]


def _url(option: str, value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or any(c in value for c in "{}?#\r\n ")
    ):
        raise ValueError(
            f"enable_openapi() {option} must be a path starting with '/' "
            f"(no '{{', '}}', '?', '#' or spaces) or None, not {value!r}"
        )
    return value


def _text(option: str, value: Any, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        wanted = "a non-empty str" if required else "a str or None"
        raise ValueError(f"enable_openapi() {option} must be {wanted}, not {value!r}")
    return value


def _json_object(option: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"enable_openapi() {option} must be a dict, not {value!r}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"enable_openapi() {option} must hold JSON values: {error}") from None
    return dict(value)


def _servers(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValueError(f"enable_openapi() servers must be a list of URLs or dicts, not {value!r}")
    servers = []
    for server in value:
        if isinstance(server, str) and server:
            servers.append({"url": server})
        elif isinstance(server, Mapping) and isinstance(server.get("url"), str):
            servers.append(_json_object("servers", server) or {})
        else:
            raise ValueError(
                f"enable_openapi() servers takes URLs or dicts with a str 'url', not {server!r}"
            )
    return tuple(servers)


def _tags(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        raise ValueError(f"enable_openapi() tags must be a list of names or dicts, not {value!r}")
    tags = []
    for tag in value:
        if isinstance(tag, str) and tag:
            tags.append({"name": tag})
        elif isinstance(tag, Mapping) and isinstance(tag.get("name"), str) and tag["name"]:
            tags.append(_json_object("tags", tag) or {})
        else:
            raise ValueError(
                f"enable_openapi() tags takes names or dicts with a str 'name', not {tag!r}"
            )
    names = [tag["name"] for tag in tags]
    if len(set(names)) != len(names):
        raise ValueError(f"enable_openapi() tags names a tag twice: {names!r}")
    return tuple(tags)


class OpenAPIDocs:
    """The document of one app and the routes that serve it.

    The document is built on the first request for it and kept; routes,
    middleware or global guards added later make the next request build it
    again.
    """

    def __init__(
        self,
        app: Any,
        *,
        title: str = "Cello API",
        version: str = "1.0.1",
        description: str | None = None,
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        openapi_url: str | None = "/openapi.json",
        servers: Any = None,
        summary: str | None = None,
        terms_of_service: str | None = None,
        contact: Mapping[str, Any] | None = None,
        license_info: Mapping[str, Any] | None = None,
        tags: Sequence[str | Mapping[str, Any]] | None = None,
        external_docs: Mapping[str, Any] | None = None,
        swagger_ui_parameters: Mapping[str, Any] | None = None,
        redoc_options: Mapping[str, Any] | None = None,
        assets_url: str | None = None,
    ) -> None:
        self.app = app
        self.openapi_url = _url("openapi_url", openapi_url)
        self.docs_url = _url("docs_url", docs_url)
        self.redoc_url = _url("redoc_url", redoc_url)
        default_assets = (self.docs_url or self.redoc_url or "/docs").rstrip("/") + "/static"
        self.assets_url = (_url("assets_url", assets_url) or default_assets).rstrip("/")
        license_info = _json_object("license_info", license_info)
        if license_info is not None and not isinstance(license_info.get("name"), str):
            raise ValueError("enable_openapi() license_info needs a str 'name'")
        self.options = SpecOptions(
            title=_text("title", title, required=True) or "",
            version=_text("version", version, required=True) or "",
            description=_text("description", description),
            summary=_text("summary", summary),
            terms_of_service=_text("terms_of_service", terms_of_service),
            contact=_json_object("contact", contact),
            license_info=license_info,
            servers=_servers(servers),
            tags=_tags(tags),
            external_docs=_json_object("external_docs", external_docs),
            hidden_paths=frozenset(path for path, _ in self._pages()),
        )
        self.swagger_ui_parameters = _json_object("swagger_ui_parameters", swagger_ui_parameters)
        self.redoc_options = _json_object("redoc_options", redoc_options)
        urls = [path for path, _ in self._pages()]
        if len(set(urls)) != len(urls):
            raise ValueError(
                f"enable_openapi() docs_url, redoc_url, openapi_url and assets_url clash: {urls!r}"
            )
        self._cached: tuple[tuple[int, ...], dict[str, Any], bytes] | None = None

    # -- the document ---------------------------------------------------------

    def _state(self) -> tuple[int, ...]:
        """What the document depends on; it only ever grows."""
        app = self.app
        return len(app._routes), len(app._middleware_entries), len(app._guards), len(app._mounts)

    def _build(self) -> tuple[dict[str, Any], bytes]:
        state = self._state()
        cached = self._cached
        if cached is not None and cached[0] == state:
            return cached[1], cached[2]
        app = self.app
        spec = build_spec(
            app._routes, app._middleware_entries, app._guards, self.options, app._mounts
        )
        encoded = Response.json(spec).body()
        self._cached = (state, spec, encoded)
        return spec, encoded

    def spec(self) -> dict[str, Any]:
        """The OpenAPI document (a fresh copy: callers may change it)."""
        document: dict[str, Any] = json.loads(self._build()[1])
        return document

    # -- the routes -----------------------------------------------------------

    def _pages(self) -> list[tuple[str, Endpoint]]:
        if self.openapi_url is None:
            return []  # the pages would have no document to show
        routes: list[tuple[str, Endpoint]] = [(self.openapi_url, self._serve_spec)]
        if self.docs_url is not None:
            routes.append((self.docs_url, self._serve_swagger))
            routes += [(f"{self.assets_url}/{n}", asset_endpoint(n)) for n in SWAGGER_ASSETS]
        if self.redoc_url is not None:
            routes.append((self.redoc_url, self._serve_redoc))
            routes += [(f"{self.assets_url}/{n}", asset_endpoint(n)) for n in REDOC_ASSETS]
        return routes

    def routes(self) -> list[tuple[str, Endpoint]]:
        """``(path, handler)`` for every GET route the documentation needs."""
        return self._pages()

    def _serve_spec(self, request: Any) -> Response:
        return Response(self._build()[1], content_type="application/json")

    def _serve_swagger(self, request: Any) -> Response:
        assert self.docs_url is not None and self.openapi_url is not None
        page = swagger_page(
            title=self.options.title,
            page_url=self.docs_url,
            spec_url=self.openapi_url,
            assets_url=self.assets_url,
            parameters=self.swagger_ui_parameters or {},
        )
        return Response.html(page, headers={"Cache-Control": "no-cache"})

    def _serve_redoc(self, request: Any) -> Response:
        assert self.redoc_url is not None and self.openapi_url is not None
        page = redoc_page(
            title=self.options.title,
            page_url=self.redoc_url,
            spec_url=self.openapi_url,
            assets_url=self.assets_url,
            options=self.redoc_options or {},
        )
        return Response.html(page, headers={"Cache-Control": "no-cache"})
