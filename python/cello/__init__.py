"""Cello: a Python web framework whose hot path is Rust."""

from cello._cello import __version__
from cello.app import App
from cello.blueprints import Blueprint
from cello.exceptions import BadRequest, ClientDisconnected, HTTPException, PayloadTooLarge
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
    "AlphaConstraint",
    "AlphanumConstraint",
    "App",
    "BadRequest",
    "Blueprint",
    "ClientDisconnected",
    "HTTPException",
    "Headers",
    "IntConstraint",
    "PayloadTooLarge",
    "QueryParams",
    "RegexConstraint",
    "Request",
    "Response",
    "UuidConstraint",
    "__version__",
]
