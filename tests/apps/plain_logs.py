"""An app that does not enable logging itself: ``run()`` adds the access log
when logs are on (``--logs``, ``--log-format``, or debug mode)."""

from cello import App

app = App()
app.enable_request_id()


@app.get("/")
def index(request):
    return {"ok": True}
