"""Whether this build of Cello serves WebSockets, shared by the WebSocket
apps, the WebSocket benchmark tables and the Autobahn recipe.

Until the WebSocket work lands, ``cello.App`` has no ``websocket`` method;
the apps then print ``not available: ...`` and exit with
``UNAVAILABLE_EXIT_CODE``, which the runners report as "not available"
instead of as a failure.
"""

import sys
from typing import NoReturn

from payloads import UNAVAILABLE_EXIT_CODE

MISSING = "this build of Cello has no App.websocket() (WebSocket support not merged yet)"


def cello_has_websocket() -> bool:
    # A Cello that cannot be imported at all is a failure, not "not
    # available": the ImportError propagates.
    import cello

    return hasattr(cello.App, "websocket")


def exit_unless_cello_has_websocket() -> None:
    if not cello_has_websocket():
        unavailable(MISSING)


def unavailable(reason: str) -> NoReturn:
    print(f"not available: {reason}", flush=True)
    sys.exit(UNAVAILABLE_EXIT_CODE)
