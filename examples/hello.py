"""Hello, World: the smallest Cello app.

Run it with ``make run`` (or ``python examples/hello.py``), then::

    curl http://127.0.0.1:8000/
    curl http://127.0.0.1:8000/hello/Ada
"""

from cello import App

app = App()


@app.get("/")
def index(request):
    return {"message": "Hello, World!"}


@app.get("/hello/{name}")
async def hello(request):
    return {"message": f"Hello, {request.params['name']}!"}


if __name__ == "__main__":
    app.run()
