"""Server-sent events: a chat feed every listener gets as it happens, which
a reconnecting client resumes where it left off, and a clock.

Run it with::

    python examples/sse.py                      # on 127.0.0.1:8000
    uvicorn examples.sse:app                    # or under any ASGI server

then, in one terminal, listen (-N: print each event as it arrives)::

    curl -N http://127.0.0.1:8000/chat/feed

and in another, post messages::

    curl -d '{"who": "ada", "text": "hello"}' http://127.0.0.1:8000/chat
    curl -N -H 'Last-Event-ID: 1' http://127.0.0.1:8000/chat/feed   # what came after 1
    curl -N http://127.0.0.1:8000/clock                              # a tick a second
    curl -N 'http://127.0.0.1:8000/clock?ticks=3'                    # three, then the end

In a browser: ``new EventSource("/chat/feed").addEventListener("message", ...)``.
"""

import asyncio
import time

from cello import App, Response, SseEvent

app = App()


class Chat:
    """Messages in memory, and a way to wait for the next one. (One process:
    with several workers, each has its own list; use a shared store.)"""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self._posted = asyncio.Event()

    def post(self, message: dict) -> int:
        self.messages.append(message)
        self._posted.set()  # wakes every listener...
        self._posted = asyncio.Event()  # ...and the next wait is for the next message
        return len(self.messages)

    async def follow(self, after: int):
        """The messages after number ``after``, then each new one, for ever."""
        while True:
            while after < len(self.messages):
                after += 1
                yield SseEvent(self.messages[after - 1], event="message", id=str(after))
            await self._posted.wait()


chat = Chat()


@app.post("/chat")
async def post_message(request):
    message = request.json()
    number = chat.post({"who": str(message.get("who", "?")), "text": str(message.get("text", ""))})
    return {"id": number}


@app.get("/chat/feed")
def chat_feed(request):
    # A reconnecting EventSource sends the id of the last event it saw.
    after = request.last_event_id
    start = int(after) if after and after.isdigit() else 0
    # retry: how long a browser waits before reconnecting (ms).
    hello = SseEvent.comment(f"{len(chat.messages)} messages so far")

    async def feed():
        yield hello
        yield SseEvent(retry=2000)
        async for event in chat.follow(start):
            yield event

    # Idle proxies close silent connections: a ": keepalive" comment goes out
    # after 15 s without events (the default).
    return Response.sse(feed(), keepalive=15)


@app.get("/clock")
def clock(request):
    ticks = int(request.query.get("ticks", "0")) or None

    async def source():
        n = 0
        while ticks is None or n < ticks:
            n += 1
            yield SseEvent.with_event("tick", {"n": n, "time": time.strftime("%H:%M:%S")})
            if ticks is None or n < ticks:
                await asyncio.sleep(1)

    return Response.sse(source())


if __name__ == "__main__":
    app.run()
