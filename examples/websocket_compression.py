"""WebSocket compression (permessage-deflate): a feed of repetitive JSON,
which the native server compresses for every client that offers it.

Run it:

    python examples/websocket_compression.py

then connect with any WebSocket client; browsers and the `websockets`
package offer compression by default:

    python -m websockets ws://127.0.0.1:8000/ws/prices

Each message is about 3 KB of JSON and travels as a few hundred bytes.
`--no-ws-per-message-deflate` (or `WebSocketConfig(per_message_deflate=False)`)
turns compression off. docs/websocket.md#compression has the details.
"""

from __future__ import annotations

from cello import App, WebSocketConfig

app = App()

SYMBOLS = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "STARK", "WAYNE"]


@app.websocket("/ws/prices")
async def prices(ws):
    """Sends `count` snapshots (query parameter, default 5), one per
    message the client sends (any text asks for the next)."""
    count = int(ws.query_params.get("count", "5"))
    for tick in range(count):
        rows = [
            {"symbol": s, "tick": tick, "bid": 100 + i, "ask": 101 + i, "currency": "EUR"}
            for i, s in enumerate(SYMBOLS * 5)
        ]
        await ws.send_json({"tick": tick, "rows": rows})
        if await ws.recv() is None:
            return
    await ws.close()


if __name__ == "__main__":
    # Compression is on by default; the settings are spelled out here.
    app.run(websocket=WebSocketConfig(per_message_deflate=True, max_message_size=1 << 20))
