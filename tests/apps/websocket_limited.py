"""A WebSocket route behind a rate limit of four requests per client, for the
test that a handshake passes the middleware chain once in every door."""

from cello import App, RateLimitConfig

app = App()
app.enable_rate_limit(RateLimitConfig.token_bucket(capacity=4, refill_rate=0.001))


@app.websocket("/ws")
async def greet(ws):
    await ws.send_text("hi")
    await ws.close()
