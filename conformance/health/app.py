"""Health checks: an async critical check the test can take down, a sync
non-critical check that always fails (so the app is DEGRADED), a version,
and details on."""

from __future__ import annotations

from cello import App, HealthCheckConfig

app = App()
app.enable_health_checks(HealthCheckConfig(version="3.0.0", timeout_secs=2))
state = {"db": True}


@app.health_check("db")
async def db():
    if not state["db"]:
        return {"status": "DOWN", "message": "connection refused", "host": "db.internal"}
    return {"status": "UP", "pool": {"size": 5}}


@app.health_check("search", critical=False)
def search():
    raise TimeoutError("search cluster slow")


@app.put("/db/{up}")
def set_db(request):
    state["db"] = request.params["up"] == "up"
    return state
