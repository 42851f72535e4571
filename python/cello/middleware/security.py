"""Security headers: ``X-Frame-Options``, HSTS, a Content Security Policy
and their kin on every response."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CSP", "SecurityHeadersConfig"]

HSTS_YEAR = 31536000

_DIRECTIVES = (
    "default_src",
    "script_src",
    "style_src",
    "img_src",
    "connect_src",
    "font_src",
    "media_src",
    "object_src",
    "frame_src",
    "frame_ancestors",
    "form_action",
    "base_uri",
)
# A directive name other than the ones above (``worker-src``, ``report-to``).
_DIRECTIVE_NAME = re.compile(r"[a-z][a-z0-9-]*")
# A source is one token of visible ASCII; `;` and `,` would end the
# directive or the policy and let a value smuggle in one of its own.
_SOURCE = re.compile(r"[!-~]+")

_REFERRER_POLICIES = frozenset({
    "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
    "same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
})  # fmt: skip
_CROSS_ORIGIN = {
    "cross_origin_opener_policy": (
        "Cross-Origin-Opener-Policy",
        {"unsafe-none", "same-origin-allow-popups", "same-origin", "noopener-allow-popups"},
    ),
    "cross_origin_embedder_policy": (
        "Cross-Origin-Embedder-Policy",
        {"unsafe-none", "require-corp", "credentialless"},
    ),
    "cross_origin_resource_policy": (
        "Cross-Origin-Resource-Policy",
        {"same-site", "same-origin", "cross-origin"},
    ),
}
_FEATURE = re.compile(r"[a-z][a-z0-9-]*")
_ALLOWLIST_KEYWORDS = frozenset({"self", "src", "*"})


def _sources(directive: str, given: Iterable[Any]) -> list[str]:
    """Sources as given: strings or lists of strings, each string split on
    spaces, so ``"'self' https:"`` is two sources."""
    sources: list[str] = []
    for item in given:
        items = [item] if isinstance(item, str) else item
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"CSP {directive}: sources are strings, not {item!r}")
        for text in items:
            if not isinstance(text, str):
                raise ValueError(f"CSP {directive}: sources are strings, not {text!r}")
            # Spaces separate sources; any other whitespace (a line break)
            # is refused rather than read as a separator.
            for source in text.split(" "):
                if not source:
                    continue
                if not _SOURCE.fullmatch(source) or ";" in source or "," in source:
                    raise ValueError(
                        f"CSP {directive}: {source!r} is not a source (no ';', ',' or control "
                        "characters)"
                    )
                sources.append(source)
    return sources


class CSP:
    """A Content Security Policy, built by method or by keyword::

        CSP().default_src("'self'").img_src("'self'", "data:")
        CSP(default_src=["'self'"], script_src=["'self'", "cdn.example.com"])

    Each directive method takes sources as arguments or as one list, sets
    that directive (replacing an earlier value) and returns the policy.
    ``str(csp)`` and ``csp.build()`` give the header value.
    """

    def __init__(
        self,
        default_src: Iterable[str] | str | None = None,
        script_src: Iterable[str] | str | None = None,
        style_src: Iterable[str] | str | None = None,
        img_src: Iterable[str] | str | None = None,
        connect_src: Iterable[str] | str | None = None,
        font_src: Iterable[str] | str | None = None,
        media_src: Iterable[str] | str | None = None,
        object_src: Iterable[str] | str | None = None,
        frame_src: Iterable[str] | str | None = None,
        frame_ancestors: Iterable[str] | str | None = None,
        form_action: Iterable[str] | str | None = None,
        base_uri: Iterable[str] | str | None = None,
        upgrade_insecure_requests: bool = False,
    ) -> None:
        self._directives: dict[str, list[str]] = {}
        given = (default_src, script_src, style_src, img_src, connect_src, font_src, media_src,
                 object_src, frame_src, frame_ancestors, form_action, base_uri)  # fmt: skip
        for name, value in zip(_DIRECTIVES, given, strict=True):
            if value is not None:
                self.directive(name, list(value) if not isinstance(value, str) else value)
        if upgrade_insecure_requests:
            self.upgrade_insecure_requests()

    def directive(self, name: str, *sources: Any) -> CSP:
        """Sets any directive (``"worker-src"`` or ``"worker_src"``)."""
        if not isinstance(name, str) or not _DIRECTIVE_NAME.fullmatch(name.replace("_", "-")):
            raise ValueError(f"CSP directive name {name!r} is not valid")
        directive = name.replace("_", "-")
        parsed = _sources(directive, sources)
        if not parsed and directive != "upgrade-insecure-requests":
            raise ValueError(f"CSP {directive}: give at least one source (\"'none'\" allows none)")
        self._directives[directive] = parsed
        return self

    def default_src(self, *sources: Any) -> CSP:
        return self.directive("default-src", *sources)

    def script_src(self, *sources: Any) -> CSP:
        return self.directive("script-src", *sources)

    def style_src(self, *sources: Any) -> CSP:
        return self.directive("style-src", *sources)

    def img_src(self, *sources: Any) -> CSP:
        return self.directive("img-src", *sources)

    def connect_src(self, *sources: Any) -> CSP:
        return self.directive("connect-src", *sources)

    def font_src(self, *sources: Any) -> CSP:
        return self.directive("font-src", *sources)

    def media_src(self, *sources: Any) -> CSP:
        return self.directive("media-src", *sources)

    def object_src(self, *sources: Any) -> CSP:
        return self.directive("object-src", *sources)

    def frame_src(self, *sources: Any) -> CSP:
        return self.directive("frame-src", *sources)

    def frame_ancestors(self, *sources: Any) -> CSP:
        return self.directive("frame-ancestors", *sources)

    def form_action(self, *sources: Any) -> CSP:
        return self.directive("form-action", *sources)

    def base_uri(self, *sources: Any) -> CSP:
        return self.directive("base-uri", *sources)

    def upgrade_insecure_requests(self) -> CSP:
        """Browsers load the page's ``http:`` resources over ``https:``."""
        self._directives["upgrade-insecure-requests"] = []
        return self

    def build(self) -> str:
        """The header value: ``"default-src 'self'; img-src 'self' data:"``."""
        return "; ".join(" ".join([name, *sources]) for name, sources in self._directives.items())

    def __str__(self) -> str:
        return self.build()

    def __repr__(self) -> str:
        return f"CSP({self.build()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CSP) and self._directives == other._directives

    __hash__ = None  # type: ignore[assignment]


def _header_text(option: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not all(" " <= c <= "~" for c in value):
        raise ValueError(
            f"security header option {option!r} must be non-empty visible ASCII text, not {value!r}"
        )
    return value


def _permissions_policy(value: Any) -> str:
    """``{"camera": [], "geolocation": ["self"]}`` → ``camera=(), geolocation=(self)``."""
    if isinstance(value, str):
        return _header_text("permissions_policy", value)
    if not isinstance(value, Mapping):
        raise ValueError(f"permissions_policy must be a str or a dict, not {value!r}")
    parts = []
    for feature, allowed in value.items():
        if not isinstance(feature, str) or not _FEATURE.fullmatch(feature.replace("_", "-")):
            raise ValueError(f"permissions_policy: {feature!r} is not a feature name")
        name = feature.replace("_", "-")
        if allowed == "*":
            parts.append(f"{name}=*")
            continue
        items = [allowed] if isinstance(allowed, str) else allowed
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise ValueError(
                f"permissions_policy {name!r}: give a list of origins, not {allowed!r}"
            )
        rendered = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"permissions_policy {name!r}: {item!r} is not a str")
            bare = item.strip('"')
            if not bare or not _SOURCE.fullmatch(bare) or any(c in bare for c in ',;"()'):
                raise ValueError(f"permissions_policy {name!r}: {item!r} is not an origin")
            rendered.append(bare if bare in _ALLOWLIST_KEYWORDS else f'"{bare}"')
        parts.append(f"{name}=({' '.join(rendered)})")
    if not parts:
        raise ValueError("permissions_policy must name at least one feature")
    return ", ".join(parts)


class SecurityHeadersConfig:
    """Headers that make browsers stricter with the app's pages, added to
    every response that does not already set them.

    The defaults send ``X-Frame-Options: DENY``, ``X-Content-Type-Options:
    nosniff``, ``X-XSS-Protection: 1; mode=block`` and ``Referrer-Policy:
    strict-origin-when-cross-origin``; HSTS, a CSP, a Permissions Policy and
    the Cross-Origin policies only when configured. An option set to None or
    False omits its header.
    """

    def __init__(
        self,
        x_frame_options: str | None = "DENY",
        x_content_type_options: bool | str | None = True,
        x_xss_protection: bool | str | None = "1; mode=block",
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        hsts_max_age: int | None = None,
        hsts_include_subdomains: bool = False,
        hsts_preload: bool = False,
        *,
        hsts: bool | None = None,
        csp: CSP | str | None = None,
        content_security_policy: CSP | str | None = None,
        permissions_policy: str | Mapping[str, Any] | None = None,
        cross_origin_opener_policy: str | None = None,
        cross_origin_embedder_policy: str | None = None,
        cross_origin_resource_policy: str | None = None,
    ) -> None:
        if csp is not None and content_security_policy is not None:
            raise ValueError("give 'csp' or 'content_security_policy', not both")
        self.x_frame_options = x_frame_options
        self.x_content_type_options = x_content_type_options
        self.x_xss_protection = x_xss_protection
        self.referrer_policy = referrer_policy
        self.hsts = hsts
        self.hsts_max_age = hsts_max_age
        self.hsts_include_subdomains = hsts_include_subdomains
        self.hsts_preload = hsts_preload
        self.csp = csp if csp is not None else content_security_policy
        self.permissions_policy = permissions_policy
        self.cross_origin_opener_policy = cross_origin_opener_policy
        self.cross_origin_embedder_policy = cross_origin_embedder_policy
        self.cross_origin_resource_policy = cross_origin_resource_policy
        self.headers()  # a bad option fails here, not when the app serves

    @classmethod
    def secure(cls, **options: Any) -> SecurityHeadersConfig:
        """The defaults plus HSTS for a year, subdomains included."""
        options.setdefault("hsts_max_age", HSTS_YEAR)
        options.setdefault("hsts_include_subdomains", True)
        return cls(**options)

    def headers(self) -> list[tuple[str, str]]:
        """The headers this configuration sends, as (name, value) pairs."""
        out: list[tuple[str, str]] = []
        frame = self.x_frame_options
        if frame not in (None, False):
            if not isinstance(frame, str) or frame.upper() not in ("DENY", "SAMEORIGIN"):
                raise ValueError(f"x_frame_options must be 'DENY' or 'SAMEORIGIN', not {frame!r}")
            out.append(("X-Frame-Options", frame.upper()))

        sniff = self.x_content_type_options
        if sniff is True or (isinstance(sniff, str) and sniff.lower() == "nosniff"):
            out.append(("X-Content-Type-Options", "nosniff"))
        elif sniff not in (None, False):
            raise ValueError(
                f"x_content_type_options must be True, False or 'nosniff', not {sniff!r}"
            )

        xss = self.x_xss_protection
        if xss is True:
            out.append(("X-XSS-Protection", "1; mode=block"))
        elif xss not in (None, False):
            out.append(("X-XSS-Protection", _header_text("x_xss_protection", xss)))

        referrer = self.referrer_policy
        if referrer is not None:
            policies = [p.strip() for p in _header_text("referrer_policy", referrer).split(",")]
            unknown = [p for p in policies if p not in _REFERRER_POLICIES]
            if unknown:
                raise ValueError(f"referrer_policy: {unknown[0]!r} is not a referrer policy")
            out.append(("Referrer-Policy", ", ".join(policies)))

        hsts = self._hsts()
        if hsts is not None:
            out.append(("Strict-Transport-Security", hsts))

        if self.csp is not None:
            if isinstance(self.csp, CSP):
                policy = self.csp.build()
                if not policy:
                    raise ValueError("csp has no directives")
            else:
                policy = _header_text("csp", self.csp)
            out.append(("Content-Security-Policy", policy))

        if self.permissions_policy is not None:
            out.append(("Permissions-Policy", _permissions_policy(self.permissions_policy)))

        for option, (name, allowed) in _CROSS_ORIGIN.items():
            value = getattr(self, option)
            if value is None:
                continue
            if value not in allowed:
                raise ValueError(f"{option} must be one of {sorted(allowed)}, not {value!r}")
            out.append((name, value))
        return out

    def _hsts(self) -> str | None:
        for option in ("hsts_include_subdomains", "hsts_preload"):
            if not isinstance(getattr(self, option), bool):
                raise ValueError(f"{option} must be True or False, not {getattr(self, option)!r}")
        if self.hsts is not None and not isinstance(self.hsts, bool):
            raise ValueError(f"hsts must be True or False, not {self.hsts!r}")
        max_age = self.hsts_max_age
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ValueError(f"hsts_max_age must be a number of seconds >= 0, not {max_age!r}")
        if self.hsts is False:
            if max_age is not None:
                raise ValueError("hsts=False contradicts hsts_max_age; give one of them")
            return None
        if max_age is None:
            if not self.hsts:
                return None
            max_age = HSTS_YEAR
        value = f"max-age={max_age}"
        if self.hsts_include_subdomains:
            value += "; includeSubDomains"
        if self.hsts_preload:
            value += "; preload"
        return value

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "security_headers", {"headers": self.headers()}

    def __repr__(self) -> str:
        return f"SecurityHeadersConfig({self.headers()!r})"
