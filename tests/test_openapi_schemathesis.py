"""Property-based testing of the example API against its own OpenAPI
document: schemathesis generates requests from the document, sends them to
the app in process (the ASGI door), and checks every response against the
document (status, content type, headers, body schema) and for 5xx.

Bounded so it runs in seconds: few examples per operation, a fixed seed
(``derandomize``) so a run is the same run every time, no deadlines."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from examples.openapi_api import app

schema = schemathesis.openapi.from_asgi("/openapi.json", app)

# The librarian's key, so the guarded routes are exercised past their 401.
LIBRARIAN = {"X-API-Key": "librarian-key"}


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_example_api_keeps_the_promises_of_its_document(case):
    case.call_and_validate(headers=LIBRARIAN)
