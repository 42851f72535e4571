"""The response type and its constructors (``Response.json``, ``.text``...).

Handlers may also return plain values; see ``docs/responses.md`` for how
each return value is turned into a response.
"""

from cello._cello import Response

__all__ = ["Response"]
