"""Property-based testing of the example API against its own OpenAPI
document: schemathesis generates requests from the document, sends them
through each door (the app in process over ASGI, and the native server of a
live process), and checks every response against the document (status,
content type, headers, body schema, 5xx, and that what the document
forbids is refused and what it allows accepted).

The example's ``/books/{id}/lookup`` asks an external catalogue: a small
one (tests/apps/catalogue.py) runs for it, so that the lookups are answered
(a lookup with no catalogue configured is a 503, which schemathesis rightly
counts as a server error). tests/schemathesis_media.py tells schemathesis
how to make the PNG and JPEG files the cover upload documents.

Bounded so it runs in seconds: few examples per operation, a fixed seed
(``derandomize``) so a run is the same run every time, no deadlines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

import tests.schemathesis_media  # noqa: F401  (registers the image files)
from examples.openapi_api import app
from tests.live import ROOT, LiveServer

# The librarian's key, so the guarded routes are exercised past their 401.
LIBRARIAN = {"X-API-Key": "librarian-key"}

BOUNDED = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

in_process = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """The catalogue's URL, also in the environment of the in-process app
    (with a directory for the covers it is sent)."""
    with LiveServer("tests.apps.catalogue:app") as live, pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOOKSHELF_CATALOG_URL", live.url)
        patch.setenv("BOOKSHELF_COVERS_DIR", str(tmp_path_factory.mktemp("covers")))
        yield live.url


@in_process.parametrize()
@BOUNDED
def test_the_asgi_door_keeps_the_promises_of_the_document(case, catalogue):
    case.call_and_validate(headers=LIBRARIAN)


def test_the_native_door_keeps_the_promises_of_the_document(tmp_path, catalogue):
    """The schemathesis command line against the native server, every phase
    (stateful sequences through the links it infers included), in both
    positive and negative mode."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run",
        "--max-examples", "15", "--seed", "1", "--workers", "1",
        "--generation-database", "none", "--suppress-health-check", "all",
        "--request-timeout", "30", "--no-color",
        "--header", f"X-API-Key: {LIBRARIAN['X-API-Key']}",
        # Its heuristic takes a book deleted by DELETE /admin/books/{id}
        # between POST /books and GET /books/{id} for one never created: it
        # does not see that the two paths name the same book.
        "--exclude-checks", "ensure_resource_availability",
    ]  # fmt: skip
    env = {"BOOKSHELF_CATALOG_URL": catalogue, "BOOKSHELF_COVERS_DIR": str(tmp_path / "covers")}
    hooks = {**env, "SCHEMATHESIS_HOOKS": str(ROOT / "tests" / "schemathesis_media.py")}
    with LiveServer("examples.openapi_api:app", "--env", "production", env=env) as live:
        result = subprocess.run(
            [*command, f"{live.url}/openapi.json"],
            cwd=tmp_path,
            env={**os.environ, **hooks},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout
