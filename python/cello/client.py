"""``AsyncClient``: outgoing HTTP requests from async code.

```python
from cello import AsyncClient

async with AsyncClient(timeout=10.0) as client:
    response = await client.get("https://api.example.com/items")
    items = response.json()
```

Requests run in Rust (hyper's pooled HTTP/1.1 client, rustls for HTTPS) on
one background thread of the extension, so the client works under any
asyncio loop: the native server's, uvicorn's, or ``asyncio.run()``. See
``docs/http-client.md``.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

from cello._cello import Headers, _http_client_exit, _HttpClient, dumps, loads

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "AsyncClient",
    "ClientConnectionError",
    "ClientError",
    "ClientTimeout",
    "HttpResponse",
    "InvalidRequest",
    "ProtocolError",
    "ResponseTooLarge",
]

# Answers still being handed over when the program ends are waited for
# (briefly) before the interpreter finalizes; see _http_client_exit.
atexit.register(_http_client_exit)

#: ``(method, url, headers) -> context manager`` that traces one request
#: and adds ``traceparent`` to ``headers``; set by ``app.enable_telemetry()``.
_tracing: Callable[..., AbstractContextManager[Callable[[int], None]]] | None = None

#: Response bodies larger than this (10 MiB) are refused unless the client
#: is given another ``max_response_size``.
DEFAULT_MAX_RESPONSE_SIZE = 10 * 1024 * 1024


class ClientError(Exception):
    """A request made with ``AsyncClient`` failed (no response to return)."""


class ClientTimeout(ClientError, TimeoutError):
    """No complete response within the timeout (connecting, waiting for the
    answer and reading its body all count)."""


class ClientConnectionError(ClientError, ConnectionError):
    """Could not connect (refused, unknown host, TLS handshake or certificate
    failure), or the connection broke before the response was complete."""


class ProtocolError(ClientError):
    """The server's answer is not valid HTTP."""


class ResponseTooLarge(ClientError):
    """The response body is larger than the client's ``max_response_size``."""


class InvalidRequest(ClientError, ValueError):
    """The request cannot be sent: a bad URL, method or header."""


_FAILURES: dict[str, type[ClientError]] = {
    "timeout": ClientTimeout,
    "connection": ClientConnectionError,
    "protocol": ProtocolError,
    "too_large": ResponseTooLarge,
}


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


class HttpResponse:
    """A response received by ``AsyncClient``: ``status`` (also
    ``status_code``), ``reason``, ``headers`` (case-insensitive), ``content``
    (bytes), ``text`` and ``json()``."""

    __slots__ = ("_text", "content", "headers", "reason", "status", "url")

    def __init__(
        self,
        status: int,
        headers: Headers,
        content: bytes,
        url: str = "",
        reason: str = "",
    ) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.url = url
        self.reason = reason
        self._text: str | None = None

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body decoded with the charset of ``Content-Type`` (UTF-8 when
        none or an unknown one is named); undecodable bytes become U+FFFD."""
        if self._text is None:
            charset = _charset(self.headers.get("content-type")) or "utf-8"
            try:
                self._text = self.content.decode(charset, errors="replace")
            except LookupError:
                self._text = self.content.decode("utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not JSON)."""
        return loads(self.content)

    def __repr__(self) -> str:
        return f"<HttpResponse [{self.status}]>"


def _settle(future: asyncio.Future[Any], url: str, ok: bool, payload: Any) -> None:
    if future.done():
        return
    if ok:
        status, reason, headers, content = payload
        future.set_result(HttpResponse(status, headers, content, url, reason))
    else:
        kind, message = payload
        future.set_exception(_FAILURES.get(kind, ClientError)(message))


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items: Iterable[Any]
    if isinstance(headers, Mapping):
        items = headers.items()
    elif isinstance(headers, Headers):
        items = headers.multi_items()
    else:
        items = headers
    pairs = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidRequest(
                f"headers must be a dict or (name, value) pairs, not {headers!r}"
            ) from None
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidRequest(f"header names and values must be strings, not {item!r}")
        pairs.append((name, value))
    return pairs


def _with_params(url: str, params: Any) -> str:
    if not params:
        return url
    query = urlencode(params, doseq=True)
    parts = urlsplit(url)
    separator = "&" if parts.query else "?"
    base, hash_mark, fragment = url.partition("#")
    return f"{base}{separator}{query}{hash_mark}{fragment}"


class AsyncClient:
    """An HTTP client for async code, with its own connection pool.

    ``timeout`` (seconds, default 30) bounds each whole exchange;
    ``headers`` are sent with every request; response bodies over
    ``max_response_size`` bytes (default 10 MiB) raise ``ResponseTooLarge``;
    ``verify`` is ``True`` (the Mozilla CA roots built into Cello) or the
    path of a PEM file whose certificates are the only ones trusted.
    Redirects are not followed: a 3xx response is returned as it is.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        verify: bool | str | os.PathLike[str] = True,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ValueError(f"AsyncClient timeout must be a number of seconds, not {timeout!r}")
        if isinstance(max_response_size, bool) or not isinstance(max_response_size, int):
            raise ValueError(
                "AsyncClient max_response_size must be a number of bytes, "
                f"not {max_response_size!r}"
            )
        if max_response_size <= 0:
            raise ValueError(
                f"AsyncClient max_response_size must be positive, not {max_response_size!r}"
            )
        if verify is True:
            ca_file = None
        elif verify is False:
            raise ValueError(
                "AsyncClient verify=False is not supported: pass verify='ca.pem' "
                "to trust a private CA or a self-signed certificate"
            )
        elif isinstance(verify, (str, os.PathLike)):
            ca_file = os.fspath(verify)
        else:
            raise ValueError(f"AsyncClient verify must be True or a CA file path, not {verify!r}")
        self.timeout = float(timeout)
        self.max_response_size = max_response_size
        self.headers = _header_pairs(headers)
        self._core = _HttpClient(self.timeout, max_response_size, ca_file)

    @property
    def is_closed(self) -> bool:
        return bool(self._core.closed)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: str | bytes | bytearray | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        params: Any = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Sends one request and returns its response (any status)."""
        if not isinstance(url, str):
            raise InvalidRequest(f"the URL must be a string, not {url!r}")
        pairs = list(self.headers)
        given = _header_pairs(headers)
        if given:
            replaced = {name.lower() for name, _ in given}
            pairs = [(n, v) for n, v in pairs if n.lower() not in replaced] + given
        body: bytes | None = None
        if json is not None and content is not None:
            raise InvalidRequest("give a request json= or content=, not both")
        if json is not None:
            body = dumps(json)
            if not any(name.lower() == "content-type" for name, _ in pairs):
                pairs.append(("content-type", "application/json"))
        elif isinstance(content, str):
            body = content.encode("utf-8")
        elif isinstance(content, (bytes, bytearray, memoryview)):
            body = bytes(content)
        elif content is not None:
            raise InvalidRequest(f"content must be str or bytes, not {type(content).__name__}")
        full_url = _with_params(url, params)
        tracing = _tracing
        if tracing is None:
            return await self._send(method, full_url, pairs, body, timeout)
        with tracing(method, full_url, pairs) as record:
            response = await self._send(method, full_url, pairs, body, timeout)
            record(response.status)
            return response

    async def _send(
        self,
        method: str,
        full_url: str,
        pairs: list[tuple[str, str]],
        body: bytes | None,
        timeout: float | None,
    ) -> HttpResponse:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[HttpResponse] = loop.create_future()
        on_done = functools.partial(loop.call_soon_threadsafe, _settle, future, full_url)
        try:
            pending = self._core.send(method, full_url, pairs, body, timeout, on_done)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        try:
            return await future
        except asyncio.CancelledError:
            pending.cancel()
            raise

    async def get(self, url: str, headers: Any = None, **options: Any) -> HttpResponse:
        return await self.request("GET", url, headers=headers, **options)

    async def delete(self, url: str, headers: Any = None, **options: Any) -> HttpResponse:
        return await self.request("DELETE", url, headers=headers, **options)

    async def head(self, url: str, headers: Any = None, **options: Any) -> HttpResponse:
        return await self.request("HEAD", url, headers=headers, **options)

    async def options(self, url: str, headers: Any = None, **options: Any) -> HttpResponse:
        return await self.request("OPTIONS", url, headers=headers, **options)

    async def post(
        self, url: str, json: Any = None, content: Any = None, headers: Any = None, **options: Any
    ) -> HttpResponse:
        return await self.request(
            "POST", url, json=json, content=content, headers=headers, **options
        )

    async def put(
        self, url: str, json: Any = None, content: Any = None, headers: Any = None, **options: Any
    ) -> HttpResponse:
        return await self.request(
            "PUT", url, json=json, content=content, headers=headers, **options
        )

    async def patch(
        self, url: str, json: Any = None, content: Any = None, headers: Any = None, **options: Any
    ) -> HttpResponse:
        return await self.request(
            "PATCH", url, json=json, content=content, headers=headers, **options
        )

    async def aclose(self) -> None:
        """Closes the pooled connections; later requests raise ``RuntimeError``."""
        self._core.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return f"<AsyncClient timeout={self.timeout} {state}>"
