"""The Starlette WebSocket echo app mounted in a Cello app (door 3): Cello's
server hosts the ASGI websocket protocol, Starlette answers at ``/echo``.

Run from this directory: ``PORT=8000 python cello_mount_starlette_ws.py``.
A build without WebSocket support exits with ``UNAVAILABLE_EXIT_CODE``.
"""

import os

from ws_support import exit_unless_cello_has_websocket

exit_unless_cello_has_websocket()

from starlette_ws_app import app as starlette_app  # noqa: E402

from cello import App  # noqa: E402

app = App()
app.mount("", starlette_app)

if __name__ == "__main__":
    app.run(
        host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), env="production", logs=False
    )
