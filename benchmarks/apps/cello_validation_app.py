"""The validation table's Cello app.

- ``POST /validate``: the 1 KiB JSON body validated into a pydantic model
  (``order: Order``) and returned through the return annotation (validated
  and serialised as the response model).
- ``GET /dep``: the hello-world answer, from a plain handler taking the
  request (``BENCH_DEPENDS=0``, the baseline) or from a handler with one
  ``Depends`` (``BENCH_DEPENDS=1``).

Run directly::

    BENCH_DEPENDS=1 PORT=8000 .venv/bin/python benchmarks/apps/cello_validation_app.py
"""

import os

from payloads import INDEX
from validation_models import Order

from cello import App, Depends

app = App()


@app.post("/validate")
def validate(order: Order) -> Order:
    return order


def greeting() -> dict:
    return INDEX


if os.environ.get("BENCH_DEPENDS") == "1":

    @app.get("/dep")
    def with_dependency(answer: dict = Depends(greeting)):
        return answer

else:

    @app.get("/dep")
    def plain(request):
        return INDEX


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        env="production",
        logs=False,
    )
