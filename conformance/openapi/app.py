"""The app behind the OpenAPI conformance cases: a documented API behind a
JWT (the documentation paths skipped) and a guarded blueprint, so every
door serves the same document, pages, assets and 304s."""

from __future__ import annotations

from typing import Any

from cello import App, Blueprint, JwtConfig, Response
from cello.guards import Role

app = App()
app.enable_openapi(title="Conformance", version="3.0.0", tags=["notes"])
app.enable_jwt(
    JwtConfig("conformance-openapi-secret-32-by"),
    skip_paths=["/docs", "/redoc", "/openapi.json"],
)


@app.get("/notes", tags=["notes"])
def notes(request: Any) -> list[str]:
    """List the notes.

    Every note, oldest first.
    """
    return []


@app.get("/notes/{note_id:int}", tags=["notes"], summary="One note")
def note(request: Any) -> Response:
    return Response.text(request.params["note_id"])


admin = Blueprint("/admin", tags=["admin"], guards=[Role(["admin"])])


@admin.delete("/notes/{note_id:int}")
def delete_note(request: Any) -> Response:
    return Response.no_content()


app.register_blueprint(admin)
