"""WebSocket chat: the documented broadcasting example, plus rooms.

``/ws/chat`` is the chat from Cello's feature index, unchanged: a plain
``def`` handler (it runs in a worker thread) that relays every message to
the other clients. ``/rooms/{room}`` is the same idea with ``Rooms``, in an
``async def`` handler: messages go to the members of one room, as JSON.

Serve it under an ASGI server (the native server's WebSocket support
arrives with its own change)::

    uvicorn examples.websocket_chat:app

then connect two clients, for example with ``python -m websockets
ws://127.0.0.1:8000/rooms/lobby?name=ada``.
"""

from cello import App
from cello.websocket import Rooms

app = App()
clients = set()


@app.websocket("/ws/chat")
def chat(ws):
    clients.add(ws)
    ws.send_text("Welcome!")
    try:
        while True:
            msg = ws.recv()
            if msg is None:
                break
            for client in clients:
                if client != ws:
                    client.send_text(f"User: {msg.text}")
    finally:
        clients.discard(ws)


rooms = Rooms()


@app.websocket("/rooms/{room}")
async def room_chat(ws, room: str, name: str = "anonymous"):
    """``name`` comes from the query string (``?name=ada``)."""
    rooms.join(room, ws)
    await rooms.broadcast(room, {"event": "joined", "who": name}, exclude=ws)
    try:
        async for msg in ws:
            await rooms.broadcast(room, {"event": "message", "who": name, "text": msg.text})
    finally:
        rooms.leave(room, ws)
        await rooms.broadcast(room, {"event": "left", "who": name})


@app.get("/rooms/{room}")
def who_is_there(request, room: str):
    return {"room": room, "members": len(rooms.members(room))}


if __name__ == "__main__":
    app.run()
