"""How a ``@app.websocket`` handler is registered and run: the handshake's
endpoint for the HTTP pipeline, and the task (or worker thread, for a sync
handler) that runs the handler once the connection is set up."""

from __future__ import annotations

import concurrent.futures
import contextvars
import inspect
import logging
import os
import typing
from collections.abc import Callable
from typing import Any

from cello._routes import is_async_handler
from cello._signature import _is_request_type
from cello.websocket import _CURRENT, _HANDSHAKE, WebSocket, WebSocketDisconnect

logger = logging.getLogger("cello.websocket")


_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _threads() -> int:
    try:
        return max(1, int(os.environ.get("CELLO_WEBSOCKET_THREADS", "64")))
    except ValueError:
        return 64


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """The worker threads sync WebSocket handlers run in (one per open
    connection; more connections wait for a free thread)."""
    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ThreadPoolExecutor(
            max_workers=_threads(), thread_name_prefix="cello-websocket"
        )
    return _POOL


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class WebSocketRoute:
    """A WebSocket handler and what the handshake's endpoint needs to call it."""

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.handler = handler
        self.is_async = is_async_handler(handler)
        self.request_name: str | None = None
        self.signature = self._endpoint_signature(handler)

    def _endpoint_signature(self, handler: Callable[..., Any]) -> inspect.Signature:
        """The handler's signature without the WebSocket: the request first
        (as ``request``), then the parameters to bind (path, query,
        ``Depends``...)."""
        name = getattr(handler, "__qualname__", repr(handler))
        try:
            signature = inspect.signature(handler)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: cannot read the WebSocket handler's signature") from exc
        params = list(signature.parameters.values())
        if not params or params[0].kind not in _POSITIONAL:
            raise TypeError(f"{name}: a WebSocket handler takes the WebSocket as first parameter")
        try:
            hints = typing.get_type_hints(inspect.unwrap(handler))
        except Exception:
            hints = {}
        kept = []
        for param in params[1:]:
            annotation = hints.get(param.name, param.annotation)
            is_request = _is_request_type(annotation) or (
                param.name in ("request", "req") and annotation in (inspect.Parameter.empty, Any)
            )
            if self.request_name is None and is_request and param.kind in _POSITIONAL:
                self.request_name = param.name
                continue
            if param.kind == inspect.Parameter.POSITIONAL_ONLY:
                param = param.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
            kept.append(param)
        first = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return signature.replace(parameters=[first, *kept])

    def endpoint(self) -> Callable[..., Any]:
        """What the HTTP pipeline calls for the handshake (after middleware,
        guards and argument binding): it hands the arguments to the
        connection being set up."""
        signature = self.signature
        request_name = self.request_name

        def handshake(*args: Any, **kwargs: Any) -> None:
            arguments = signature.bind(*args, **kwargs).arguments
            request = arguments.pop("request")
            if request_name is not None:
                arguments[request_name] = request
            slot = _HANDSHAKE.get()
            if slot is None:
                raise RuntimeError("a WebSocket route answers WebSocket handshakes only")
            slot.append((self, request, arguments))

        handshake.__signature__ = signature  # type: ignore[attr-defined]
        # The handler's module resolves the annotations (cello._signature).
        handshake.__wrapped__ = self.handler  # type: ignore[attr-defined]
        handshake.__qualname__ = getattr(self.handler, "__qualname__", "websocket")
        handshake.__name__ = getattr(self.handler, "__name__", "websocket")
        handshake.__module__ = getattr(self.handler, "__module__", __name__)
        handshake.__doc__ = getattr(self.handler, "__doc__", None)
        return handshake

    async def serve(self, ws: WebSocket, arguments: dict[str, Any]) -> None:
        """Runs the handler for ``ws``; closes the connection when it
        returns (1000) or raises (1011, logged)."""
        token = _CURRENT.set(ws)
        try:
            if self.is_async:
                await self.handler(ws, **arguments)
            else:
                context = contextvars.copy_context()
                await ws._loop.run_in_executor(
                    _pool(), lambda: context.run(self.handler, ws, **arguments)
                )
        except WebSocketDisconnect:
            pass
        except Exception:
            logger.exception(
                "WebSocket handler %s failed", getattr(self.handler, "__qualname__", self.handler)
            )
            await ws._close(1011, "Internal Error")
            return
        finally:
            _CURRENT.reset(token)
        await ws._close(1000)
