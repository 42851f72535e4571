"""``cello serve`` of a WebSocket ASGI app (door 3), or "not available".

``python cello_serve_ws.py MODULE:APP [cello serve flags...]`` checks that
this build of Cello serves WebSockets, then becomes ``python -m cello serve
MODULE:APP ...``. Without the check, a build lacking WebSocket support would
start, answer HTTP and fail every handshake: a failure, not "not available".
"""

import os
import sys

from ws_support import exit_unless_cello_has_websocket

if __name__ == "__main__":
    exit_unless_cello_has_websocket()
    os.execv(sys.executable, [sys.executable, "-m", "cello", "serve", *sys.argv[1:]])
