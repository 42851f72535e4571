"""The app behind the sessions and CSRF conformance cases: both enabled
with fixed secrets and their default cookie attributes."""

from __future__ import annotations

from cello import App, SessionConfig
from cello.middleware import CsrfConfig

SESSION_SECRET = "conformance-session-secret"
CSRF_SECRET = "conformance-csrf-secret"

app = App()
app.enable_sessions(SessionConfig(secret=SESSION_SECRET, max_age=3600))
app.enable_csrf(CsrfConfig(secret=CSRF_SECRET, exempt_paths=["/hooks"]))


@app.get("/visit")
def visit(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return {"visits": request.session["visits"]}


@app.get("/peek")
def peek(request):
    return {"data": dict(request.session)}


@app.post("/logout")
def logout(request):
    request.session.clear()
    return {"ok": True}


@app.post("/submit")
def submit(request):
    return {"ok": True, "form": dict(request.form()) if request.is_form() else None}


@app.post("/hooks/ping")
def hook(request):
    return {"ok": True}
