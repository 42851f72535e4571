"""Cello: a Python web framework whose hot path is Rust."""

from cello._cello import __version__
from cello.app import App
from cello.background import BackgroundTask, BackgroundTasks
from cello.blueprints import Blueprint
from cello.caching import cache
from cello.client import AsyncClient, HttpResponse
from cello.config import (
    ClusterConfig,
    Http2Config,
    Http3Config,
    LimitsConfig,
    TimeoutConfig,
    TlsConfig,
    WebSocketConfig,
)
from cello.dependencies import Depends
from cello.exceptions import (
    BadRequest,
    ClientDisconnected,
    HTTPException,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from cello.forms import FormData, UploadedFile
from cello.guards import (
    And,
    Authenticated,
    ForbiddenError,
    Guard,
    GuardError,
    Not,
    Or,
    PermissionGuard,
    RoleGuard,
    UnauthorizedError,
)
from cello.health import HealthCheckConfig, HealthStatus
from cello.middleware import CSP, SecurityHeadersConfig, StaticFilesConfig
from cello.middleware.auth import (
    ApiKeyAuth,
    BasicAuth,
    JwtAuth,
    JwtConfig,
    constant_time_compare,
    validate_jwt_config,
)
from cello.middleware.rate_limit import RateLimitConfig, validate_rate_limit_config
from cello.middleware.sessions import SessionConfig, validate_session_config
from cello.params import Body, Cookie, Header, Path, Query
from cello.problems import ProblemDetails
from cello.requests import Headers, QueryParams, Request
from cello.responses import Response
from cello.routing import (
    AlphaConstraint,
    AlphanumConstraint,
    IntConstraint,
    RegexConstraint,
    UuidConstraint,
)
from cello.sse import SseEvent, SseStream
from cello.telemetry import OpenTelemetryConfig
from cello.templates import MiniJinjaEngine, TemplateEngine
from cello.validation import DTOConfig, RequestValidationError, ResponseValidationError
from cello.websocket import WebSocket, WebSocketDisconnect, WebSocketMessage

__all__ = [
    "CSP",
    "AlphaConstraint",
    "AlphanumConstraint",
    "And",
    "ApiKeyAuth",
    "App",
    "AsyncClient",
    "Authenticated",
    "BackgroundTask",
    "BackgroundTasks",
    "BadRequest",
    "BasicAuth",
    "Blueprint",
    "Body",
    "ClientDisconnected",
    "ClusterConfig",
    "Cookie",
    "DTOConfig",
    "Depends",
    "ForbiddenError",
    "FormData",
    "Guard",
    "GuardError",
    "HTTPException",
    "Header",
    "Headers",
    "HealthCheckConfig",
    "HealthStatus",
    "Http2Config",
    "Http3Config",
    "HttpResponse",
    "IntConstraint",
    "JwtAuth",
    "JwtConfig",
    "LimitsConfig",
    "MiniJinjaEngine",
    "Not",
    "OpenTelemetryConfig",
    "Or",
    "Path",
    "PayloadTooLarge",
    "PermissionGuard",
    "ProblemDetails",
    "Query",
    "QueryParams",
    "RateLimitConfig",
    "RegexConstraint",
    "Request",
    "RequestTimeout",
    "RequestValidationError",
    "Response",
    "ResponseValidationError",
    "RoleGuard",
    "SecurityHeadersConfig",
    "SessionConfig",
    "SseEvent",
    "SseStream",
    "StaticFilesConfig",
    "TemplateEngine",
    "TimeoutConfig",
    "TlsConfig",
    "UnauthorizedError",
    "UnsupportedMediaType",
    "UploadedFile",
    "UuidConstraint",
    "WebSocket",
    "WebSocketConfig",
    "WebSocketDisconnect",
    "WebSocketMessage",
    "__version__",
    "cache",
    "constant_time_compare",
    "validate_jwt_config",
    "validate_rate_limit_config",
    "validate_session_config",
]
