"""Apps for the HTTP client tests.

- ``upstream``: the server the client talks to: an echo of the request,
  bodies of a given size, a redirect, a Latin-1 text, any status;
- ``proxy``: an app whose async handler calls out with ``cello.AsyncClient``
  (the URL comes in the query), to show the client working inside each door.
"""

from __future__ import annotations

from cello import App, AsyncClient, Response
from cello.client import ClientError

upstream = App()


@upstream.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def echo(request):
    return {
        "method": request.method,
        "query": request.query_string,
        "headers": {name.lower(): request.headers.get(name) for name in request.headers},
        "body": request.text(),
    }


@upstream.get("/bytes/{size}")
def sized(request):
    return Response.binary(b"x" * int(request.params["size"]))


@upstream.get("/redirect")
def redirect(request):
    return Response.redirect("/echo")


@upstream.get("/latin1")
def latin1(request):
    return Response.binary("café".encode("latin-1"), content_type="text/plain; charset=latin-1")


@upstream.get("/status/{code}")
def status(request):
    code = int(request.params["code"])
    return Response.json({"code": code}, status=code)


proxy = App()


@proxy.get("/fetch")
async def fetch(request):
    url = request.query.get("url", "")
    max_size = int(request.query.get("max", str(1024 * 1024)))
    try:
        async with AsyncClient(timeout=10, max_response_size=max_size) as client:
            if request.query.get("method") == "GET":
                answer = await client.get(url)
            else:
                answer = await client.post(url, json={"via": "proxy"}, headers={"X-Trace": "t1"})
    except ClientError as error:
        return Response.json({"error": type(error).__name__}, status=502)
    return {"status": answer.status, "upstream": answer.json()}
