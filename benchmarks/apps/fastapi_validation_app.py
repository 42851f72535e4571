"""The validation table's FastAPI peer: ``POST /validate`` validates the
1 KiB JSON body into the same pydantic model and returns it through the
return annotation (FastAPI's response model). ``async def``: FastAPI's fast
path (a sync endpoint would go through a thread pool).

Run from this directory: ``uvicorn --no-access-log fastapi_validation_app:app``.
"""

from fastapi import FastAPI
from validation_models import Order

app = FastAPI()


@app.post("/validate")
async def validate(order: Order) -> Order:
    return order
