"""Cello's native WebSocket echo endpoint at ``/echo`` (door 1): text comes
back as text, bytes as bytes. Used by the WebSocket tables and by Autobahn.

Run from this directory: ``PORT=8000 python cello_ws_app.py`` (extra flags
are read by ``app.run`` like ``cello run`` flags). A build without
WebSocket support exits with ``UNAVAILABLE_EXIT_CODE``.
"""

import os

from ws_support import exit_unless_cello_has_websocket

exit_unless_cello_has_websocket()

from cello import App  # noqa: E402

app = App()


@app.websocket("/echo")
async def echo(ws):
    await ws.accept()
    async for message in ws:
        if message.is_text():
            await ws.send_text(message.text)
        elif message.is_binary():
            await ws.send_binary(message.data)


if __name__ == "__main__":
    app.run(
        host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), env="production", logs=False
    )
