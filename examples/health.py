"""Health checks for Kubernetes: liveness, readiness and startup probes, and
a full report with the app's own checks (one async, one sync and not
critical), behind an API key that the probes do not need.

Run it with::

    python examples/health.py                  # on 127.0.0.1:8000
    uvicorn examples.health:app                # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/health/live     # 200 {"status":"UP",...}
    curl -i http://127.0.0.1:8000/health/ready    # 200 while the checks pass
    curl -i http://127.0.0.1:8000/health          # the report: every check
    curl -i -X POST http://127.0.0.1:8000/queue/fill -H 'X-API-Key: demo-key'
    curl -i http://127.0.0.1:8000/health          # "DEGRADED": the queue is full
    curl -i -X POST http://127.0.0.1:8000/db/stop -H 'X-API-Key: demo-key'
    curl -i http://127.0.0.1:8000/health/ready    # 503: the database is down
"""

from __future__ import annotations

import asyncio

from cello import App, HealthCheckConfig
from cello.middleware import ApiKeyAuth

config = HealthCheckConfig(version="1.4.2", timeout_secs=2, cache_secs=1)

app = App()
app.enable_health_checks(config)
# Probes carry no credentials: their paths skip the API key.
app.use(ApiKeyAuth(keys={"demo-key": "ops"}, skip_paths=config.paths))

database = {"connected": False}
queue: list[str] = []


@app.on_startup
async def connect() -> None:
    await asyncio.sleep(0.1)  # the startup probe answers 503 until this ends
    database["connected"] = True


@app.health_check("database")
async def database_check():
    await asyncio.sleep(0)  # a real check would run SELECT 1 here
    if not database["connected"]:
        return {"status": "DOWN", "message": "no connection"}
    return {"status": "UP", "pool": {"size": 10, "idle": 9}}


@app.health_check("queue", critical=False)
def queue_check():
    # Sync: run in a worker thread, so a slow check never blocks the app.
    return ("DEGRADED" if len(queue) >= 3 else "UP", {"depth": len(queue)})


@app.post("/queue/fill")
def fill(request):
    queue.extend(["job"] * 3)
    return {"depth": len(queue)}


@app.post("/db/stop")
def stop(request):
    database["connected"] = False
    return {"connected": False}


if __name__ == "__main__":
    app.run()
