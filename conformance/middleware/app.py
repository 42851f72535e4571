"""The app behind the middleware conformance cases: native middleware, a
Python middleware, an exception handler for the framework's 404, and a
mounted FastAPI app, so every door shows the same chain around each."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi import Request as FastAPIRequest

from cello import App, Blueprint, HTTPException

app = App()
app.enable_request_id()
app.enable_body_limit(64)


@app.middleware("http")
async def stamp(request, call_next):
    response = await call_next(request)
    response.set_header("x-stamp", f"{request.method} {response.status}")
    return response


@app.exception_handler(404)
def not_found(request, exc):
    return {"missing": request.path, "request_id": request.context["request_id"]}, 404


@app.exception_handler(HTTPException)
def http_error(request, exc):
    body = {"status": exc.status_code, "detail": exc.detail}
    return body, exc.status_code, exc.headers or {}


@app.get("/")
def index(request):
    return {"request_id": request.context["request_id"]}


@app.post("/echo")
async def echo(request):
    return {"size": len(request.body())}


@app.post("/upload", body_limit=128)
async def upload(request):
    return {"size": len(request.body())}


@app.put("/tiny", body_limit=8)
def tiny(request):
    return {"size": len(request.body())}


@app.get("/teapot")
def teapot(request):
    raise HTTPException(418, "short and stout")


admin = Blueprint("/admin")


@admin.before_request
def only_with_token(request):
    if request.headers.get("x-token") != "letmein":
        return {"denied": request.path}, 403
    return None


@admin.get("/panel")
def panel(request):
    return {"panel": True}


app.register_blueprint(admin)

legacy = FastAPI()


@legacy.get("/id")
async def legacy_id(request: FastAPIRequest):
    return {"seen": request.headers.get("x-request-id")}


app.mount("/legacy", legacy)
