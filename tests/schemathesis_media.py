"""Schemathesis hooks for the Bookshelf example (examples/openapi_api.py):
the media types it uses beyond JSON.

The cover upload's document says its ``image`` part is ``image/png`` or
``image/jpeg``; the server checks that by content. Schemathesis sends any
bytes under such a label unless told how to make the files, which is
what this does: images that start as PNG and JPEG files do, followed by
anything. Its shelf page is HTML: read as the string its document says
it is. Imported by tests/test_openapi_schemathesis.py, and loaded by
the schemathesis command line through ``SCHEMATHESIS_HOOKS``."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff\xe0"}

for media_type, signature in SIGNATURES.items():
    schemathesis.openapi.media_type(
        media_type, st.binary(max_size=2048).map(lambda rest, head=signature: head + rest)
    )


@schemathesis.deserializer("text/html")
def html_as_text(ctx: object, response: schemathesis.Response) -> str:
    return response.content.decode("utf-8")
