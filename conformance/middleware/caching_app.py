"""The app behind the response cache's conformance cases: each handler
counts its calls in its body, so a hit (the count unchanged) and a miss look
the same in every door."""

from __future__ import annotations

from collections import Counter

from cello import App, Response, cache

app = App()
app.enable_etag()
app.enable_caching(ttl=600)

calls: Counter[str] = Counter()


def count(name: str) -> int:
    calls[name] += 1
    return calls[name]


@app.get("/doc")
def doc(request):
    return Response.text(f"document {count('doc')}")


@app.get("/no-store")
def no_store(request):
    return Response.text(f"fresh {count('no-store')}", headers={"Cache-Control": "no-store"})


@app.get("/missing")
def missing(request):
    return {"missing": count("missing")}, 404


@app.get("/lang")
def lang(request):
    language = request.headers.get("accept-language", "none")
    return Response.text(f"{language} {count('lang')}", headers={"Vary": "Accept-Language"})


@app.get("/tagged")
@cache(ttl=120, tags=["docs"])
def tagged(request):
    return {"tagged": count("tagged")}


@app.post("/invalidate")
def invalidate(request):
    app.invalidate_cache(tags=["docs"])
    return {"invalidated": ["docs"]}
