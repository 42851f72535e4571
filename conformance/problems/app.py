"""ProblemDetails returned and raised: every error kind, a custom type with
extension members, headers, an exception handler that takes one over."""

from __future__ import annotations

from cello import App, HTTPException, ProblemDetails

app = App()

KINDS = {
    "validation": ProblemDetails.validation,
    "bad-request": ProblemDetails.bad_request,
    "unauthorized": ProblemDetails.unauthorized,
    "forbidden": ProblemDetails.forbidden,
    "not-found": ProblemDetails.not_found,
    "conflict": ProblemDetails.conflict,
    "rate-limited": ProblemDetails.rate_limited,
    "timeout": ProblemDetails.timeout,
    "internal": ProblemDetails.internal,
}


@app.get("/kinds/{kind}")
def kind(request):
    make = KINDS.get(request.params["kind"])
    if make is None:
        raise ProblemDetails.not_found(f"no error kind {request.params['kind']!r}", request.path)
    return make(f"a {request.params['kind']} problem", request.path)


@app.get("/raised/{kind}")
async def raised(request):
    raise KINDS[request.params["kind"]](f"raised {request.params['kind']}")


@app.get("/rate-limited")
def rate_limited(request):
    return ProblemDetails.rate_limited("Slow down.", retry_after=7)


@app.get("/custom")
def custom(request):
    return (
        ProblemDetails(
            type_uri="https://example.com/probs/out-of-credit",
            title="You do not have enough credit.",
            status=403,
            detail="Your current balance is 30, but that costs 50.",
            instance="/account/12345/msgs/abc",
        )
        .with_extension("balance", 30)
        .with_extension("accounts", ["/account/12345", None])
    )


@app.get("/default")
def default(request):
    return ProblemDetails()


@app.get("/unicode")
def unicode(request):
    return ProblemDetails.bad_request('名前 "quoted" \\ and a tab\there', "/unicode")


@app.get("/response")
def response(request):
    problem = ProblemDetails.conflict("Already taken.")
    problem.headers = {"X-Problem": "yes"}
    return problem.to_response()


@app.get("/with-status")
def with_status(request):
    # A returned problem in a (body, status) tuple takes the tuple's status.
    return ProblemDetails.bad_request("reclassified"), 422


@app.get("/caught")
def caught(request):
    try:
        raise ProblemDetails.forbidden("nope")
    except HTTPException as exc:
        return {"caught": type(exc).__name__, "status_code": exc.status_code}


class KeyedConflict(ProblemDetails):
    """A problem class of the app's own, with an exception handler."""


@app.get("/handled")
def handled(request):
    raise KeyedConflict.conflict("handled elsewhere").with_extension("key", "k-1")


@app.exception_handler(KeyedConflict)
def on_keyed_conflict(request, exc):
    exc.instance = request.path
    return exc.with_extension("handled", True)
