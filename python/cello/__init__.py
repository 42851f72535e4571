"""Cello: a Python web framework whose hot path is Rust."""

from cello._cello import __version__
from cello.app import App
from cello.blueprints import Blueprint
from cello.config import (
    ClusterConfig,
    Http2Config,
    Http3Config,
    LimitsConfig,
    TimeoutConfig,
    TlsConfig,
)
from cello.exceptions import (
    BadRequest,
    ClientDisconnected,
    HTTPException,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from cello.middleware import CSP, SecurityHeadersConfig, StaticFilesConfig
from cello.middleware.sessions import SessionConfig, validate_session_config
from cello.requests import Headers, QueryParams, Request
from cello.responses import Response
from cello.routing import (
    AlphaConstraint,
    AlphanumConstraint,
    IntConstraint,
    RegexConstraint,
    UuidConstraint,
)

__all__ = [
    "CSP",
    "AlphaConstraint",
    "AlphanumConstraint",
    "App",
    "BadRequest",
    "Blueprint",
    "ClientDisconnected",
    "ClusterConfig",
    "HTTPException",
    "Headers",
    "Http2Config",
    "Http3Config",
    "IntConstraint",
    "LimitsConfig",
    "PayloadTooLarge",
    "QueryParams",
    "RegexConstraint",
    "Request",
    "RequestTimeout",
    "Response",
    "SecurityHeadersConfig",
    "SessionConfig",
    "StaticFilesConfig",
    "TimeoutConfig",
    "TlsConfig",
    "UnsupportedMediaType",
    "UuidConstraint",
    "__version__",
    "validate_session_config",
]
