"""Apps for the CSRF tests.

- ``app``: ``enable_csrf()`` with a fixed secret, cookies without
  ``Secure`` (so an httpx cookie jar sends them over plain HTTP) and a
  webhook path exempt;
- ``defaults``: ``enable_csrf()`` with every default, for the cookie's
  attributes, with sessions too;
- ``custom``: other names, only GET safe, an exception handler that
  reshapes the 403 and a ``before_request`` hook that reads the token.
"""

from __future__ import annotations

from cello import App, Response, SessionConfig
from cello.middleware import CsrfConfig, csrf_input, csrf_meta

app = App()
app.enable_csrf(CsrfConfig(secret="csrf-secret", cookie_secure=False, exempt_paths=["/webhooks"]))


@app.get("/form")
def form(request):
    return Response.html(f"<form method=post>{csrf_input(request)}</form>{csrf_meta(request)}")


@app.get("/token")
def token(request):
    return {"token": request.csrf_token, "context": request.context["csrf_token"]}


@app.post("/submit")
def submit(request):
    # The middleware read the form to find the token; the handler still can.
    if request.is_form():
        return {"ok": True, "form": dict(request.form())}
    return {"ok": True, "body": request.text()}


@app.put("/submit")
def replace(request):
    return {"ok": True}


@app.post("/upload")
def upload(request):
    return {"ok": True, "size": len(request.body())}


@app.post("/webhooks/github")
def webhook(request):
    return {"ok": True}


@app.post("/webhooksfoo")
def not_exempt(request):
    return {"ok": True}


defaults = App()
defaults.enable_csrf()
defaults.enable_sessions(SessionConfig(secret="s"))


@defaults.get("/")
def index(request):
    request.session["seen"] = True
    return {"token": request.csrf_token}


custom = App()
custom.enable_csrf(
    secret=b"custom-secret",
    cookie_name="__Host-csrf",
    header_name="X-XSRF-Token",
    form_field="token",
    safe_methods=["get"],
)


@custom.exception_handler(403)
def forbidden(request, exc):
    return {"refused": exc.detail}, 403


@custom.before_request
def remember_token(request):
    request.context["seen_by_hook"] = request.csrf_token


@custom.get("/")
def custom_index(request):
    return {"hook": request.context["seen_by_hook"], "token": request.csrf_token}


@custom.post("/")
def custom_post(request):
    return {"ok": True}


@custom.route("/anything", methods=["HEAD", "OPTIONS"])
def custom_other(request):
    return {"ok": True}
