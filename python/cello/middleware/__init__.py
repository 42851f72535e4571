"""Cello's middleware: the classes ``app.use(...)`` takes.

Native middleware runs in Rust before routing, in every door (the native
server, the app under an ASGI server, mounted ASGI apps), so it sees the
framework's own responses (404, 405, 413) as well as handlers'. Each kind
takes a fixed place in the chain, whatever order the app adds them in; see
docs/middleware.md for the order, drawn as a picture.
"""

from __future__ import annotations

from cello.health import HealthCheckConfig, HealthStatus
from cello.middleware.access_log import AccessLog, LoggingConfig
from cello.middleware.auth import (
    ApiKeyAuth,
    BasicAuth,
    JwtAuth,
    JwtConfig,
    constant_time_compare,
    validate_jwt_config,
)
from cello.middleware.cache import CacheConfig
from cello.middleware.circuit_breaker import CircuitBreaker, CircuitBreakerConfig
from cello.middleware.compression import CompressionConfig
from cello.middleware.cors import CorsConfig
from cello.middleware.csrf import CsrfConfig, csrf_input, csrf_meta
from cello.middleware.etag import ETag, ETagConfig
from cello.middleware.prometheus import PrometheusConfig
from cello.middleware.rate_limit import AdaptiveRateLimitConfig, RateLimitConfig
from cello.middleware.request_id import RequestId
from cello.middleware.security import CSP, SecurityHeadersConfig
from cello.middleware.session_stores import MemoryStore, SessionStore, SqliteStore
from cello.middleware.sessions import SessionConfig, validate_session_config
from cello.middleware.static_files import StaticFilesConfig

__all__ = [
    "CSP",
    "AccessLog",
    "AdaptiveRateLimitConfig",
    "ApiKeyAuth",
    "BasicAuth",
    "CacheConfig",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CompressionConfig",
    "CorsConfig",
    "CsrfConfig",
    "ETag",
    "ETagConfig",
    "HealthCheckConfig",
    "HealthStatus",
    "JwtAuth",
    "JwtConfig",
    "LoggingConfig",
    "MemoryStore",
    "PrometheusConfig",
    "RateLimitConfig",
    "RequestId",
    "SecurityHeadersConfig",
    "SessionConfig",
    "SessionStore",
    "SqliteStore",
    "StaticFilesConfig",
    "constant_time_compare",
    "csrf_input",
    "csrf_meta",
    "validate_jwt_config",
    "validate_session_config",
]
