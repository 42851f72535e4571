"""CORS and security headers: an API that a front end on another origin
may call with cookies, and browser-hardening headers on every response.

Run it with::

    python examples/cors.py                    # on 127.0.0.1:8000
    uvicorn examples.cors:app                  # or under any ASGI server

then::

    # a preflight, answered before routing (no OPTIONS route needed): 204
    curl -i -X OPTIONS http://127.0.0.1:8000/api/notes \\
         -H 'Origin: https://app.example.com' \\
         -H 'Access-Control-Request-Method: POST' \\
         -H 'Access-Control-Request-Headers: content-type, x-csrf-token'

    # an origin that is not listed: 403 problem, no Access-Control-Allow-Origin
    curl -i -X OPTIONS http://127.0.0.1:8000/api/notes \\
         -H 'Origin: https://app.example.com.evil.net' \\
         -H 'Access-Control-Request-Method: POST'

    # the actual request: the origin echoed, X-Total exposed, CSP and HSTS
    curl -i http://127.0.0.1:8000/api/notes -H 'Origin: https://app.example.com'

    # the page that may be framed by its own origin keeps its X-Frame-Options
    curl -i http://127.0.0.1:8000/embed
"""

from cello import CSP, App, Response, SecurityHeadersConfig
from cello.middleware import CorsConfig

app = App()

app.use(
    CorsConfig(
        origins=["https://app.example.com", "http://localhost:5173"],
        allow_headers=["Content-Type", "X-CSRF-Token"],
        expose_headers=["X-Total"],
        credentials=True,
        max_age=3600,
    )
)

app.enable_security_headers(
    SecurityHeadersConfig.secure(
        csp=CSP()
        .default_src("'self'")
        .img_src("'self'", "data:")
        .frame_ancestors("'self'")
        .upgrade_insecure_requests(),
        permissions_policy={"camera": [], "microphone": [], "geolocation": ["self"]},
    )
)

NOTES = [{"id": 1, "text": "buy milk"}, {"id": 2, "text": "call home"}]


@app.get("/api/notes")
def list_notes(request):
    return Response.json(NOTES, headers={"X-Total": str(len(NOTES))})


@app.post("/api/notes")
def add_note(request):
    note = {"id": len(NOTES) + 1, "text": request.json()["text"]}
    NOTES.append(note)
    return note, 201


@app.get("/embed")
def embed(request):
    # This page may be framed by the app's own pages: its header wins.
    return Response.html("<p>embeddable</p>", headers={"X-Frame-Options": "SAMEORIGIN"})


if __name__ == "__main__":
    app.run()
