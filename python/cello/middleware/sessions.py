"""Server-side sessions: ``request.session`` kept in a ``SessionStore``
between requests, found again through a signed cookie.

The cookie holds only ``<session id>.<signature>``: a random 256-bit id and
its HMAC-SHA256 under the app's secret. A cookie whose signature does not
verify, or whose id the store does not know (any more), gets a fresh empty
session with a new id, never an error and never the id the client chose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from cello.middleware.session_stores import MemoryStore, SessionStore, SqliteStore

__all__ = ["Session", "SessionConfig", "SessionMiddleware", "validate_session_config"]

_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
# The documentation's names for the same options.
_ALIASES = {
    "httponly": "cookie_http_only",
    "http_only": "cookie_http_only",
    "secure": "cookie_secure",
    "same_site": "cookie_same_site",
    "path": "cookie_path",
    "domain": "cookie_domain",
}
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
# 32 random bytes and a SHA-256 digest, each URL-safe base64 without padding.
_COOKIE_VALUE = re.compile(r"([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def secret_key(secret: str | bytes | None, purpose: bytes) -> bytes:
    """The HMAC key for one purpose, derived from the app's secret (a random
    one when None), so sessions and CSRF tokens never share a key."""
    if secret is None:
        raw = secrets.token_bytes(32)
    elif isinstance(secret, str):
        raw = secret.encode("utf-8")
    else:
        raw = bytes(secret)
    return hmac.new(raw, b"cello." + purpose, hashlib.sha256).digest()


def check_secret(owner: str, secret: Any) -> None:
    if secret is None:
        return
    if not isinstance(secret, str | bytes) or not secret:
        raise ValueError(f"{owner} secret must be a non-empty str or bytes, not {secret!r}")


class SessionConfig:
    """How sessions are kept: ``app.enable_sessions(SessionConfig(...))``.

    ``secret`` signs the session cookie; None generates a random one each
    time the server starts (sessions then do not survive a restart). The
    cookie is ``cookie_name`` with ``Path``, ``Domain``, ``Secure``,
    ``HttpOnly``, ``SameSite`` and ``Max-Age=max_age`` as configured; the
    store keeps a session ``max_age`` seconds after its last change.
    ``store`` is any ``SessionStore``; None means a ``MemoryStore`` in one
    process and a shared ``SqliteStore`` under ``run(workers=N)``.

    The documentation's names work as keywords and attributes too:
    ``httponly``/``http_only``, ``secure``, ``same_site``, ``path``, ``domain``.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        cookie_name: str = "session_id",
        cookie_path: str = "/",
        cookie_domain: str | None = None,
        cookie_secure: bool = True,
        cookie_http_only: bool = True,
        cookie_same_site: str = "Lax",
        max_age: int = 86400,
        store: SessionStore | None = None,
        **aliases: Any,
    ) -> None:
        self.secret = secret
        self.cookie_name = cookie_name
        self.cookie_path = cookie_path
        self.cookie_domain = cookie_domain
        self.cookie_secure = cookie_secure
        self.cookie_http_only = cookie_http_only
        self.cookie_same_site = cookie_same_site
        self.max_age = max_age
        self.store = store
        for alias, value in aliases.items():
            if alias not in _ALIASES:
                raise TypeError(f"SessionConfig() got an unexpected keyword argument {alias!r}")
            setattr(self, _ALIASES[alias], value)
        validate_session_config(self)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set in __init__: the aliases.
        if name in _ALIASES:
            return getattr(self, _ALIASES[name])
        raise AttributeError(f"'SessionConfig' object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, _ALIASES.get(name, name), value)

    def __repr__(self) -> str:
        return (
            f"SessionConfig(cookie_name={self.cookie_name!r}, cookie_path={self.cookie_path!r}, "
            f"cookie_domain={self.cookie_domain!r}, cookie_secure={self.cookie_secure!r}, "
            f"cookie_http_only={self.cookie_http_only!r}, "
            f"cookie_same_site={self.cookie_same_site!r}, max_age={self.max_age!r}, "
            f"store={self.store!r})"
        )


def validate_session_config(config: SessionConfig) -> None:
    """Raises ``ValueError`` naming the option that is wrong: an empty
    ``cookie_name``, a ``cookie_same_site`` other than Strict/Lax/None,
    ``SameSite=None`` without ``cookie_secure`` (browsers drop such a
    cookie), or a ``max_age`` that is not a positive number of seconds."""
    check_secret("SessionConfig", config.secret)
    if not isinstance(config.cookie_name, str) or not config.cookie_name:
        raise ValueError("SessionConfig cookie_name must be a non-empty string")
    same_site = config.cookie_same_site
    if not isinstance(same_site, str) or same_site.lower() not in _SAME_SITE:
        raise ValueError(
            f"SessionConfig cookie_same_site must be 'Strict', 'Lax' or 'None', not {same_site!r}"
        )
    if same_site.lower() == "none" and not config.cookie_secure:
        raise ValueError(
            "SessionConfig cookie_same_site='None' needs cookie_secure=True "
            "(browsers reject SameSite=None cookies without Secure)"
        )
    max_age = config.max_age
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
        raise ValueError(
            f"SessionConfig max_age must be a positive int number of seconds, not {max_age!r}"
        )
    path = config.cookie_path
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"SessionConfig cookie_path must start with '/', not {path!r}")
    if config.cookie_domain is not None and (
        not isinstance(config.cookie_domain, str) or not config.cookie_domain
    ):
        raise ValueError(
            f"SessionConfig cookie_domain must be a non-empty string or None, "
            f"not {config.cookie_domain!r}"
        )
    if config.store is not None and not isinstance(config.store, SessionStore):
        raise ValueError(
            "SessionConfig store must have async load(), save() and delete() methods "
            f"(a SessionStore), not {config.store!r}"
        )


def new_session_id() -> str:
    return _b64(secrets.token_bytes(32))


class Session(MutableMapping[str, Any]):
    """``request.session``: a dict of JSON-serialisable values kept between
    requests.

    Setting or deleting a key marks it modified, and only a modified
    session is saved and re-sent. Changing a value in place (appending to a
    list it holds) is not seen: reassign it, or set ``modified = True``.
    """

    def __init__(
        self,
        data: dict[str, Any],
        session_id: str,
        is_new: bool,
        on_new_id: Callable[[str], None] | None = None,
    ) -> None:
        self._data = data
        self._id = session_id
        self.is_new = is_new
        self.modified = False
        self.cleared = False
        self._on_new_id = on_new_id

    @property
    def id(self) -> str:
        return self._id

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<Session {self._data!r}>"

    def clear(self) -> None:
        """Empties the session and ends it: its stored entry is deleted and
        the cookie expired. Anything set afterwards starts a new session
        under a new id (call it on logout)."""
        self._data.clear()
        self.cleared = True
        self.modified = True
        self._new_id()

    def regenerate(self) -> None:
        """Moves the data to a new id and deletes the old entry (call it on
        login, so an id planted before login is worth nothing after)."""
        self.modified = True
        self._new_id()

    rotate = regenerate

    def _new_id(self) -> None:
        self._id = new_session_id()
        if self._on_new_id is not None:
            self._on_new_id(self._id)

    def to_dict(self) -> dict[str, Any]:
        """A copy of the data, as the store keeps it."""
        return dict(self._data)


def _cache_control_for_cookie(value: str | None) -> str:
    """A response that sets a session cookie must not be stored by a
    shared cache, which would hand the cookie to other clients."""
    if not value:
        return "private"
    directives = [d.strip() for d in value.split(",") if d.strip()]
    kept = [d for d in directives if d.lower() != "public" and not d.lower().startswith("s-maxage")]
    names = {d.split("=", 1)[0].strip().lower() for d in kept}
    if not names & {"private", "no-store"}:
        kept.insert(0, "private")
    return ", ".join(kept)


def _header(response: Any, name: str) -> str | None:
    for key, value in response.headers.items():
        if key.lower() == name:
            return str(value)
    return None


def _add_vary_cookie(response: Any) -> None:
    vary = _header(response, "vary")
    if not vary:
        response.set_header("Vary", "Cookie")
        return
    names = {v.strip().lower() for v in vary.split(",")}
    if "cookie" not in names and "*" not in names:
        response.set_header("Vary", f"{vary}, Cookie")


class SessionMiddleware:
    """The framework-tier Python middleware behind ``app.enable_sessions()``."""

    def __init__(self, config: SessionConfig) -> None:
        validate_session_config(config)
        self.config = config
        # Generated here, in the process that configures the app: workers
        # forked from it all hold the same key.
        self._key = secret_key(config.secret, b"sessions")
        self._store: SessionStore | None = config.store

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            self._store = MemoryStore()
        return self._store

    def close(self) -> None:
        """Releases what the store holds open (an SQLite connection), at the
        app's shutdown."""
        close = getattr(self._store, "close", None)
        if close is not None:
            close()

    def before_fork(self, directory: str) -> None:
        """Called in the master before ``run(workers=N)`` forks: without a
        store of the app's choosing, the workers share an SQLite file."""
        if self._store is None:
            self._store = SqliteStore(f"{directory}/sessions.sqlite3")

    def sign(self, session_id: str) -> str:
        digest = hmac.new(self._key, session_id.encode("ascii"), hashlib.sha256).digest()
        return f"{session_id}.{_b64(digest)}"

    def unsign(self, cookie: str | None) -> str | None:
        """The session id in a cookie whose signature verifies, else None."""
        if not cookie:
            return None
        match = _COOKIE_VALUE.fullmatch(cookie)
        if match is None:
            return None
        session_id = match.group(1)
        if not hmac.compare_digest(self.sign(session_id), cookie):
            return None
        return session_id

    async def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        config = self.config
        presented = request.cookies.get(config.cookie_name)
        stored_id = self.unsign(presented)
        data = await self.store.load(stored_id) if stored_id is not None else None
        if data is None:
            stored_id = None
        context = request.context

        def on_new_id(session_id: str) -> None:
            context["session_id"] = session_id

        session = Session(
            data if data is not None else {},
            stored_id if stored_id is not None else new_session_id(),
            is_new=stored_id is None,
            on_new_id=on_new_id,
        )
        context["session"] = session
        context["session_id"] = session.id
        context["session_is_new"] = session.is_new

        response = await call_next(request)
        await self._finish(response, session, stored_id, presented is not None)
        return response

    async def _finish(
        self, response: Any, session: Session, stored_id: str | None, had_cookie: bool
    ) -> None:
        store = self.store
        if response.status >= 500:
            # A failed request's half-made changes are not kept.
            if had_cookie:
                _add_vary_cookie(response)
            return
        if session:
            moved = stored_id is not None and session.id != stored_id
            if session.modified or moved:
                await store.save(session.id, session.to_dict(), self.config.max_age)
                self._set_cookie(response, self.sign(session.id), self.config.max_age)
            if moved and stored_id is not None:
                await store.delete(stored_id)
        elif stored_id is not None:
            await store.delete(stored_id)
            self._set_cookie(response, "", 0)
        elif session.cleared and had_cookie:
            self._set_cookie(response, "", 0)
        if had_cookie or _header(response, "set-cookie") is not None:
            _add_vary_cookie(response)

    def _set_cookie(self, response: Any, value: str, max_age: int) -> None:
        config = self.config
        response.set_cookie(
            config.cookie_name,
            value,
            max_age=max_age,
            path=config.cookie_path,
            domain=config.cookie_domain,
            secure=bool(config.cookie_secure),
            httponly=bool(config.cookie_http_only),
            samesite=_SAME_SITE[config.cookie_same_site.lower()],
            expires=None if max_age else _EPOCH,
        )
        response.set_header(
            "Cache-Control", _cache_control_for_cookie(_header(response, "cache-control"))
        )
