"""The pydantic models of the validation table: the 1 KiB body of
``POST /echo`` (payloads.ECHO) as a typed order. Shared by the Cello and
FastAPI apps so both validate exactly the same schema."""

from pydantic import BaseModel


class Line(BaseModel):
    sku: str
    qty: int
    note: str


class Order(BaseModel):
    id: int
    name: str
    active: bool
    tags: list[str]
    items: list[Line]
