"""The request object handlers receive.

``Request`` is implemented natively: every attribute is computed lazily, on
first access, from data the Rust server already parsed. See
``docs/requests.md`` for the full list of attributes and methods.
"""

from cello._cello import Headers, QueryParams, Request
from cello._support import CallableStr, Context

__all__ = ["CallableStr", "Context", "Headers", "QueryParams", "Request"]
