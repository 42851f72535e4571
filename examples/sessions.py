"""Sessions and CSRF: log in with a form, stay logged in across requests,
log out; every form and script call carries the CSRF token.

Run it with::

    python examples/sessions.py                # on 127.0.0.1:8000
    uvicorn examples.sessions:app              # or under any ASGI server

then open http://localhost:8000/ and log in as ``ada`` / ``lovelace``.
(The cookies are ``Secure``: browsers send them to ``localhost`` over plain
HTTP, but to any other host only over HTTPS.) With curl::

    # the login page: a CSRF cookie and the same token in a hidden field
    curl -c jar -b jar http://localhost:8000/

    # posting without the token: 403 "CSRF token validation failed"
    curl -i -c jar -b jar http://localhost:8000/login -d username=ada -d password=lovelace

    # a script sends the token in the X-CSRF-Token header instead
    curl -b jar http://localhost:8000/api/me

Logging in moves the session to a new id (``regenerate()``), so an id an
attacker planted before the login is worthless after it; logging out
deletes the session and expires the cookie (``clear()``).
"""

import hmac
import html
import os

from cello import App, Response, SessionConfig
from cello.middleware import CsrfConfig, csrf_input, csrf_meta

# In production, set both secrets from the environment: without them each
# start generates new ones and every user is logged out on a restart.
SECRET = os.environ.get("APP_SECRET")

# A demo user; a real app keeps password hashes (hashlib.scrypt, argon2...).
USERS = {"ada": "lovelace"}

app = App()
app.enable_sessions(SessionConfig(secret=SECRET, max_age=8 * 3600))
app.enable_csrf(CsrfConfig(secret=SECRET))


def page(request, body: str, status: int = 200) -> Response:
    return Response.html(
        f"<!doctype html><html><head>{csrf_meta(request)}<title>Sessions</title></head>"
        f"<body>{body}</body></html>",
        status=status,
    )


@app.get("/")
def home(request):
    user = request.session.get("user")
    if user is None:
        return page(
            request,
            '<form method="post" action="/login">'
            f"{csrf_input(request)}"
            '<input name="username"> <input name="password" type="password">'
            "<button>Log in</button></form>",
        )
    visits = request.session["visits"] = request.session.get("visits", 0) + 1
    return page(
        request,
        f"<p>Hello, {html.escape(user)} (visit {visits})</p>"
        f'<form method="post" action="/logout">{csrf_input(request)}'
        "<button>Log out</button></form>",
    )


@app.post("/login")
def login(request):
    form = request.form()
    user = form.get("username", "")
    password = USERS.get(user)
    if password is None or not hmac.compare_digest(password, form.get("password", "")):
        return page(request, "<p>Wrong user name or password.</p>", status=401)
    request.session.regenerate()
    request.session["user"] = user
    return Response.redirect("/", status=303)


@app.post("/logout")
def logout(request):
    request.session.clear()
    return Response.redirect("/", status=303)


@app.get("/api/me")
def me(request):
    return {"user": request.session.get("user"), "csrf_token": request.csrf_token}


@app.post("/api/notes")
def add_note(request):
    if "user" not in request.session:
        return {"error": "log in first"}, 401
    # Reassigning the list marks the session modified; appending in place would not.
    notes = [*request.session.get("notes", []), request.json()["text"]]
    request.session["notes"] = notes
    return {"notes": notes}


if __name__ == "__main__":
    app.run()
