"""Background tasks and problem details: a sign-up API that answers at once
and sends its welcome email after the response, and reports bad input as
RFC 7807 problems.

The "mailer" here is a list, to stay self-contained; a real app would call
its mail service in ``send_welcome`` (an ``async def`` runs on the event
loop; a plain ``def`` would run in a worker thread).

Run it with::

    python examples/background_tasks.py        # on 127.0.0.1:8000
    uvicorn examples.background_tasks:app      # or under any ASGI server

then::

    curl -i -X POST http://127.0.0.1:8000/signup -d '{"email": "ada@example.com"}'
    # 202 {"status":"pending","email":"ada@example.com"}, then the email goes out
    curl -i http://127.0.0.1:8000/outbox          # ["Welcome, ada@example.com!"]
    curl -i -X POST http://127.0.0.1:8000/signup -d '{"email": "ada@example.com"}'
    # 409 application/problem+json, type /errors/conflict
    curl -i -X POST http://127.0.0.1:8000/signup -d '{"email": "nope"}'
    # 422 application/problem+json with an "errors" member
"""

import asyncio
import logging

from cello import App, BackgroundTasks, ProblemDetails, Response

app = App()
log = logging.getLogger("examples.signup")

USERS: set[str] = set()
OUTBOX: list[str] = []
AUDIT: list[str] = []


async def send_welcome(address: str, greeting: str = "Welcome") -> None:
    await asyncio.sleep(0.01)  # the mail service's round trip
    OUTBOX.append(f"{greeting}, {address}!")


def write_audit(event: str, address: str) -> None:
    # A plain function: it runs in a worker thread, off the event loop.
    AUDIT.append(f"{event} {address}")


@app.post("/signup")
def signup(request):
    try:
        address = request.json()["email"]
    except (ValueError, KeyError, TypeError):
        raise ProblemDetails.bad_request('Send {"email": "..."} as JSON.', request.path) from None
    if not isinstance(address, str) or "@" not in address:
        problem = ProblemDetails.validation("The email address is not valid.", request.path)
        raise problem.with_extension("errors", [{"field": "email", "message": "needs an @"}])
    if address in USERS:
        return ProblemDetails.conflict(f"{address} has already signed up.", request.path)
    USERS.add(address)

    tasks = BackgroundTasks()
    tasks.add_task(send_welcome, address, greeting="Welcome")  # Starlette's form
    tasks.add_task(write_audit, ["signup", address])  # Cello's documented form: one list
    return Response.json({"status": "pending", "email": address}, status=202, background=tasks)


@app.get("/outbox")
def outbox(request):
    return {"sent": OUTBOX, "audit": AUDIT}


if __name__ == "__main__":
    app.run()
