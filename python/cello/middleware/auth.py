"""Authentication: JWT bearer tokens and API keys (checked in Rust before
routing) and HTTP Basic (a Python middleware, since the password check is
the app's own function).

Each one refuses a request without valid credentials with a 401 RFC 7807
problem and a ``WWW-Authenticate`` challenge, and on success sets
``request.context["user"]`` (plus ``jwt_claims``, ``api_key_name`` or
``basic_auth_user``) for handlers and guards.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from cello._cello import constant_time_compare
from cello.exceptions import HTTPException

__all__ = [
    "ALGORITHMS",
    "ApiKeyAuth",
    "BasicAuth",
    "JwtAuth",
    "JwtConfig",
    "constant_time_compare",
    "validate_jwt_config",
]

ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384")
# The most clock skew ``leeway`` may allow, in seconds (a day).
MAX_LEEWAY = 86400

_PUBLIC_KEY_MARKERS = ("-----BEGIN PUBLIC KEY-----", "-----BEGIN RSA PUBLIC KEY-----")


def _skip_paths(option: str, paths: Iterable[str] | str | None) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, str):
        paths = [paths]
    checked = []
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{option} takes paths starting with '/', not {path!r}")
        checked.append(path)
    return checked


def _is_exempt(request: Any, skip: list[str]) -> bool:
    """A skipped path (exactly, or a path below it) or a CORS preflight."""
    if request.method == "OPTIONS" and request.get_header("access-control-request-method"):
        return True
    path = request.path
    for prefix in skip:
        prefix = prefix.rstrip("/")
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def _names(option: str, value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ValueError(f"JwtConfig {option} must be a str or a list of str, not {value!r}")
    items = list(items)
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"JwtConfig {option} must be a non-empty str or a list of them")
    return items


class JwtConfig:
    """How JWT bearer tokens are verified.

    ``secret`` is the shared secret (``str`` or ``bytes``) for the HS*
    algorithms and the PEM public key for RS* and ES*. The token is read
    from ``header_name`` (after ``header_prefix`` and a space; an empty
    prefix means the header holds the bare token), else from the cookie
    ``cookie_name`` when set. ``leeway`` seconds of clock skew are allowed
    on ``exp`` and ``nbf``; ``issuer`` and ``audience``, when set (a str or
    a list), must match the token's ``iss`` and ``aud``. ``expiration`` is
    the lifetime, in seconds, an app gives the tokens it issues.
    """

    def __init__(
        self,
        secret: str | bytes,
        algorithm: str = "HS256",
        header_name: str = "Authorization",
        cookie_name: str | None = None,
        leeway: int = 0,
        expiration: int = 3600,
        issuer: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        header_prefix: str = "Bearer",
    ) -> None:
        self.secret = secret
        self.algorithm = algorithm
        self.header_name = header_name
        self.cookie_name = cookie_name
        self.leeway = leeway
        self.expiration = expiration
        self.issuer = issuer
        self.audience = audience
        self.header_prefix = header_prefix

    def __repr__(self) -> str:
        # Never the secret: a repr ends up in logs.
        return (
            f"JwtConfig(algorithm={self.algorithm!r}, header_name={self.header_name!r}, "
            f"cookie_name={self.cookie_name!r}, leeway={self.leeway!r}, "
            f"issuer={self.issuer!r}, audience={self.audience!r})"
        )

    def _options(self) -> dict[str, Any]:
        validate_jwt_config(self)
        secret = self.secret.encode() if isinstance(self.secret, str) else bytes(self.secret)
        return {
            "secret": secret,
            "algorithm": self.algorithm.upper(),
            "header_name": self.header_name,
            "header_prefix": self.header_prefix,
            "cookie_name": self.cookie_name,
            "leeway": self.leeway,
            "issuer": _names("issuer", self.issuer),
            "audience": _names("audience", self.audience),
        }


def validate_jwt_config(config: JwtConfig) -> None:
    """Raises ValueError naming the first problem with ``config``."""
    if not isinstance(config, JwtConfig):
        raise ValueError(f"validate_jwt_config() takes a JwtConfig, not {type(config).__name__}")
    secret = config.secret
    if not isinstance(secret, (str, bytes, bytearray)):
        raise ValueError(f"JwtConfig secret must be a str or bytes, not {type(secret).__name__}")
    if not secret:
        raise ValueError("JwtConfig secret must not be empty")
    algorithm = config.algorithm
    if not isinstance(algorithm, str) or algorithm.upper() not in ALGORITHMS:
        raise ValueError(
            f"JwtConfig algorithm {algorithm!r} is not supported; "
            f"use one of {', '.join(ALGORITHMS)}"
        )
    if algorithm.upper()[:2] in ("RS", "ES"):
        text = secret.decode("utf-8", "replace") if not isinstance(secret, str) else secret
        if "PRIVATE KEY-----" in text:
            raise ValueError(
                f"JwtConfig secret for {algorithm.upper()} must be the PEM public key, "
                "not the private key (which must never leave the token issuer)"
            )
        if not text.lstrip().startswith(_PUBLIC_KEY_MARKERS):
            raise ValueError(
                f"JwtConfig secret for {algorithm.upper()} must be a PEM public key "
                "('-----BEGIN PUBLIC KEY-----...')"
            )
    for option in ("header_name", "header_prefix"):
        value = getattr(config, option)
        if not isinstance(value, str) or (option == "header_name" and not value):
            raise ValueError(f"JwtConfig {option} must be a str, not {value!r}")
    if config.cookie_name is not None and (
        not isinstance(config.cookie_name, str) or not config.cookie_name
    ):
        raise ValueError(
            f"JwtConfig cookie_name must be a non-empty str, not {config.cookie_name!r}"
        )
    for option, upper in (("leeway", MAX_LEEWAY), ("expiration", None)):
        value = getattr(config, option)
        low = 0 if option == "leeway" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(
                f"JwtConfig {option} must be a whole number of seconds >= {low}, not {value!r}"
            )
        if upper is not None and value > upper:
            raise ValueError(f"JwtConfig {option} must be at most {upper} seconds, not {value}")
    _names("issuer", config.issuer)
    _names("audience", config.audience)


class JwtAuth:
    """Requires a valid JWT on every request (see ``JwtConfig``), except on
    the skipped paths and CORS preflights. A valid token's claims become
    ``request.context["jwt_claims"]`` and ``request.context["user"]``."""

    def __init__(self, config: JwtConfig, skip_paths: Iterable[str] | None = None) -> None:
        if not isinstance(config, JwtConfig):
            raise TypeError(f"JwtAuth() takes a JwtConfig, not {type(config).__name__}")
        validate_jwt_config(config)
        self.config = config
        self.skip_paths = _skip_paths("skip_paths", skip_paths)

    def skip_path(self, path: str) -> JwtAuth:
        """Lets ``path`` and the paths below it through without a token."""
        self.skip_paths.extend(_skip_paths("skip_path()", [path]))
        return self

    def _layer(self) -> tuple[str, dict[str, Any]]:
        options = self.config._options()
        options["skip_paths"] = list(self.skip_paths)
        return "jwt", options

    def __repr__(self) -> str:
        return f"JwtAuth({self.config!r}, skip_paths={self.skip_paths!r})"


class ApiKeyAuth:
    """Requires one of ``keys`` in the ``header`` header.

    ``keys`` maps each key to its holder's name, or to a dict with a
    ``"name"`` and anything else guards should see (``"roles"``,
    ``"permissions"``). Handlers get the name as
    ``request.context["api_key_name"]``, and ``request.context["user"]`` is
    ``{"name": name}``, or that whole dict.
    """

    def __init__(
        self,
        keys: Mapping[str, str | Mapping[str, Any]],
        header: str = "X-API-Key",
        skip_paths: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise ValueError("ApiKeyAuth keys must be a non-empty dict of key -> name")
        self._entries: list[tuple[str, str, str | None]] = []
        for key, holder in keys.items():
            if not isinstance(key, str) or not key or key != key.strip():
                raise ValueError(
                    "ApiKeyAuth keys must be non-empty str without surrounding whitespace"
                )
            self._entries.append((key, *_holder(holder)))
        if not isinstance(header, str) or not header:
            raise ValueError(f"ApiKeyAuth header must be a header name, not {header!r}")
        self.keys = dict(keys)
        self.header = header
        self.skip_paths = _skip_paths("skip_paths", skip_paths)

    def skip_path(self, path: str) -> ApiKeyAuth:
        """Lets ``path`` and the paths below it through without a key."""
        self.skip_paths.extend(_skip_paths("skip_path()", [path]))
        return self

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "api_key", {
            "keys": list(self._entries),
            "header": self.header,
            "skip_paths": list(self.skip_paths),
        }

    def __repr__(self) -> str:
        # The names, never the keys.
        names = sorted({name for _, name, _ in self._entries})
        return f"ApiKeyAuth(names={names!r}, header={self.header!r})"


def _holder(holder: Any) -> tuple[str, str | None]:
    """The name of a key's holder, and its user document as JSON (None for
    the plain ``{"name": name}``)."""
    if isinstance(holder, str):
        return holder, None
    if isinstance(holder, Mapping) and isinstance(holder.get("name"), str):
        try:
            document = json.dumps(dict(holder), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"ApiKeyAuth user {holder['name']!r} is not JSON: {error}") from None
        return holder["name"], document
    raise ValueError(
        "ApiKeyAuth key names must be str, or a dict with a str 'name' "
        f"(and roles, permissions...), not {holder!r}"
    )


Verify = Callable[[str, str], "bool | Awaitable[bool]"]


def _quoted(realm: str) -> str:
    if not isinstance(realm, str) or not all(" " <= c <= "~" for c in realm):
        raise ValueError(f"BasicAuth realm must be printable ASCII text, not {realm!r}")
    return '"' + realm.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BasicAuth:
    """HTTP Basic authentication (RFC 7617): ``verify(username, password)``,
    sync or async, says whether the credentials are good. On success
    ``request.context["basic_auth_user"]`` is the username and
    ``request.context["user"]`` is ``{"username": username}``.

    Runs in the Python middleware tier, after the native layers.
    """

    def __init__(
        self,
        verify: Verify,
        realm: str = "Restricted",
        skip_paths: Iterable[str] | None = None,
    ) -> None:
        if not callable(verify):
            raise TypeError("BasicAuth() takes a verify(username, password) function")
        self.verify = verify
        self.realm = realm
        self._challenge = {"WWW-Authenticate": f"Basic realm={_quoted(realm)}"}
        self.skip_paths = _skip_paths("skip_paths", skip_paths)

    def skip_path(self, path: str) -> BasicAuth:
        """Lets ``path`` and the paths below it through without credentials."""
        self.skip_paths.extend(_skip_paths("skip_path()", [path]))
        return self

    def _refuse(self, detail: str) -> HTTPException:
        return HTTPException(401, detail, headers=self._challenge)

    def _credentials(self, request: Any) -> tuple[str, str]:
        header = request.get_header("authorization")
        if not header:
            raise self._refuse("Missing credentials")
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise self._refuse("Missing credentials")
        try:
            decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True)
            text = decoded.decode("utf-8")
        except (UnicodeError, binascii.Error):
            raise self._refuse("Malformed credentials") from None
        username, colon, password = text.partition(":")
        if not colon:
            raise self._refuse("Malformed credentials")
        return username, password

    async def __call__(self, request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        if _is_exempt(request, self.skip_paths):
            return await call_next(request)
        username, password = self._credentials(request)
        try:
            verdict = self.verify(username, password)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as error:
            # The error's message may hold the password (a KeyError on a
            # lookup by it); the log gets its type only. The original stays
            # on __context__ for a debugger.
            raise RuntimeError(f"BasicAuth verify() raised {type(error).__name__}") from None
        finally:
            del password
        if verdict is not True:
            raise self._refuse("Invalid credentials")
        request.context["basic_auth_user"] = username
        request.context["user"] = {"username": username}
        return await call_next(request)

    def __repr__(self) -> str:
        return f"BasicAuth(realm={self.realm!r})"
