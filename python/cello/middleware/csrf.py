"""CSRF protection by double submit: a signed token in a cookie that a
page must echo in a header or a form field before the app accepts an
unsafe request (POST, PUT, PATCH, DELETE...).

A page on another site can make the browser send the cookie, but cannot
read it, so it cannot echo it. The token is
``<unix time>.<random hex>.<HMAC-SHA256 hex>``; the signature makes a token
planted by someone without the app's secret worthless.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from cello.exceptions import HTTPException
from cello.middleware.sessions import check_secret, secret_key

__all__ = ["CSRF_FAILED", "CsrfConfig", "CsrfMiddleware", "csrf_input", "csrf_meta"]

CSRF_FAILED = "CSRF token validation failed"
DEFAULT_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
_TOKEN = re.compile(r"([0-9]{1,20})\.([0-9a-f]{32})\.([0-9a-f]{64})")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A form field in a multipart body is found by reading at most this much
# of the body: a token field is tiny, and uploads can be huge.
_MULTIPART_SCAN_LIMIT = 1024 * 1024


def _strings(option: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"CsrfConfig {option} must be a list of strings, not {value!r}")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"CsrfConfig {option} must hold strings, not {items!r}")
    return items


class CsrfConfig:
    """``app.enable_csrf(CsrfConfig(...))``.

    ``secret`` signs tokens (None: a random one per server start). The token
    travels in the ``cookie_name`` cookie (readable by the page's scripts,
    so not HttpOnly) and comes back in the ``header_name`` header or the
    ``form_field`` form field. Requests whose method is in ``safe_methods``
    and paths in ``exempt_paths`` (exact, or as a ``path/`` prefix) are not
    checked.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        cookie_name: str = "_csrf",
        header_name: str = "X-CSRF-Token",
        safe_methods: Iterable[str] = DEFAULT_SAFE_METHODS,
        exempt_paths: Iterable[str] = (),
        form_field: str = "_csrf",
        cookie_secure: bool = True,
        cookie_same_site: str = "Lax",
        cookie_path: str = "/",
    ) -> None:
        self.secret = secret
        self.cookie_name = cookie_name
        self.header_name = header_name
        self.safe_methods = _strings("safe_methods", safe_methods)
        self.exempt_paths = _strings("exempt_paths", exempt_paths)
        self.form_field = form_field
        self.cookie_secure = cookie_secure
        self.cookie_same_site = cookie_same_site
        self.cookie_path = cookie_path
        validate_csrf_config(self)

    def __repr__(self) -> str:
        return (
            f"CsrfConfig(cookie_name={self.cookie_name!r}, header_name={self.header_name!r}, "
            f"safe_methods={self.safe_methods!r}, exempt_paths={self.exempt_paths!r}, "
            f"form_field={self.form_field!r}, cookie_secure={self.cookie_secure!r}, "
            f"cookie_same_site={self.cookie_same_site!r})"
        )


def validate_csrf_config(config: CsrfConfig) -> None:
    """Raises ``ValueError`` naming the option that is wrong."""
    check_secret("CsrfConfig", config.secret)
    for option in ("cookie_name", "form_field"):
        value = getattr(config, option)
        if not isinstance(value, str) or not value:
            raise ValueError(f"CsrfConfig {option} must be a non-empty string, not {value!r}")
    if not isinstance(config.header_name, str) or not _HEADER_NAME.fullmatch(config.header_name):
        raise ValueError(
            f"CsrfConfig header_name must be a header name, not {config.header_name!r}"
        )
    same_site = config.cookie_same_site
    if not isinstance(same_site, str) or same_site.lower() not in _SAME_SITE:
        raise ValueError(
            f"CsrfConfig cookie_same_site must be 'Strict', 'Lax' or 'None', not {same_site!r}"
        )
    if same_site.lower() == "none" and not config.cookie_secure:
        raise ValueError("CsrfConfig cookie_same_site='None' needs cookie_secure=True")
    if not isinstance(config.cookie_path, str) or not config.cookie_path.startswith("/"):
        raise ValueError(
            f"CsrfConfig cookie_path must be a path starting with '/', not {config.cookie_path!r}"
        )
    for path in _strings("exempt_paths", config.exempt_paths):
        if not path.startswith("/"):
            raise ValueError(f"CsrfConfig exempt_paths must start with '/', not {path!r}")


def _exempt(path: str, exempt_paths: list[str]) -> bool:
    for exempt in exempt_paths:
        prefix = exempt.rstrip("/")
        if path == exempt or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


class CsrfMiddleware:
    """The framework-tier Python middleware behind ``app.enable_csrf()``."""

    def __init__(self, config: CsrfConfig, clock: Callable[[], float] = time.time) -> None:
        validate_csrf_config(config)
        self.config = config
        self._key = secret_key(config.secret, b"csrf")
        self._safe = {m.upper() for m in config.safe_methods}
        self._exempt = list(config.exempt_paths)
        self._clock = clock

    def _signature(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).hexdigest()

    def new_token(self) -> str:
        payload = f"{int(self._clock())}.{secrets.token_hex(16)}"
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str | None) -> bool:
        """Whether ``token`` is well formed and signed with this app's key."""
        if not token:
            return False
        match = _TOKEN.fullmatch(token)
        if match is None:
            return False
        payload = f"{match.group(1)}.{match.group(2)}"
        return hmac.compare_digest(self._signature(payload), match.group(3))

    async def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        config = self.config
        cookie = request.cookies.get(config.cookie_name)
        valid_cookie = self.verify(cookie)
        checked = request.method.upper() not in self._safe and not _exempt(
            request.path, self._exempt
        )
        if checked:
            submitted = await self._submitted(request)
            if (
                not valid_cookie
                or submitted is None
                or not hmac.compare_digest(submitted.encode(), str(cookie).encode())
            ):
                raise HTTPException(403, CSRF_FAILED)
        token = cookie if valid_cookie else self.new_token()
        context = request.context
        context["csrf_token"] = token
        context["csrf_field"] = config.form_field
        response = await call_next(request)
        if not valid_cookie:
            response.set_cookie(
                config.cookie_name,
                token,
                path=config.cookie_path,
                secure=bool(config.cookie_secure),
                httponly=False,
                samesite=_SAME_SITE[config.cookie_same_site.lower()],
            )
        return response

    async def _submitted(self, request: Any) -> str | None:
        """The token the request echoes: the header, else the form field."""
        header = request.headers.get(self.config.header_name)
        if header:
            return str(header).strip()
        content_type = (request.headers.get("content-type") or "").lower()
        if content_type.startswith("application/x-www-form-urlencoded"):
            value = request.form().get(self.config.form_field)
            return None if value is None else str(value)
        if content_type.startswith("multipart/form-data"):
            boundary = _boundary(request.headers.get("content-type") or "")
            if boundary is None:
                return None
            body = await request.body_async()
            return multipart_field(body, boundary, self.config.form_field)
        return None


def _boundary(content_type: str) -> str | None:
    match = re.search(r';\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))', content_type, re.I)
    if match is None:
        return None
    return match.group(1) or match.group(2)


_DISPOSITION_NAME = re.compile(rb'(?:^|;)\s*name="([^"]*)"', re.I)


def multipart_field(body: bytes, boundary: str, name: str) -> str | None:
    """The value of the plain (non-file) field ``name`` in a
    ``multipart/form-data`` body, or None when there is none."""
    delimiter = b"--" + boundary.encode("latin-1")
    wanted = name.encode("utf-8")
    scanned = body[:_MULTIPART_SCAN_LIMIT]
    for part in scanned.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, separator, value = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        for line in head.split(b"\r\n"):
            field, _, rest = line.partition(b":")
            if field.strip().lower() != b"content-disposition":
                continue
            if b"filename" in rest.lower():
                break
            match = _DISPOSITION_NAME.search(rest)
            if match is not None and match.group(1) == wanted:
                value = value.removesuffix(b"\r\n")
                try:
                    return value.decode("utf-8").strip()
                except UnicodeDecodeError:
                    return None
    return None


def csrf_input(request: Any) -> str:
    """``<input type="hidden" name="_csrf" value="...">`` for a form."""
    field = request.context.get("csrf_field", "_csrf")
    token = request.csrf_token
    return (
        f'<input type="hidden" name="{html.escape(field, quote=True)}" '
        f'value="{html.escape(token, quote=True)}">'
    )


def csrf_meta(request: Any) -> str:
    """``<meta name="csrf-token" content="...">`` for scripts that send the
    token in a header."""
    return f'<meta name="csrf-token" content="{html.escape(request.csrf_token, quote=True)}">'
