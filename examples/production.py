"""A production-style setup: worker processes, timeouts, limits, hooks.

Run it with::

    python examples/production.py              # 2 workers on 127.0.0.1:8000
    python examples/production.py --workers 4 --port 9000 --logs

then ``curl http://127.0.0.1:8000/`` shows which worker process answered.
SIGTERM (or Ctrl+C) lets in-flight requests finish before exiting.
"""

import os

from cello import App, ClusterConfig, LimitsConfig, TimeoutConfig

app = App()


@app.on_event("startup")
async def open_resources():
    # Runs once in every worker process, before it accepts connections.
    app.state.worker = os.getpid()


@app.get("/")
def index(request):
    return {"worker": app.state.worker}


@app.post("/echo")
def echo(request):
    return {"received": request.json()}


if __name__ == "__main__":
    app.run(
        env="production",
        cluster=ClusterConfig(workers=2, max_restarts=5, shutdown_timeout=20),
        timeout=TimeoutConfig(read_header=5, read_body=10, idle=30, handler=15),
        limits=LimitsConfig(max_body_size=64 * 1024, max_connections=1000),
    )
