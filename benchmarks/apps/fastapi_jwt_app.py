"""The JWT table's FastAPI peer: ``GET /`` behind FastAPI's ``HTTPBearer``
and a dependency that verifies the token with PyJWT, as FastAPI's security
tutorial does. ``async def`` throughout (FastAPI's fast path; a sync
dependency would go through a thread pool).

Run from this directory: ``uvicorn --no-access-log fastapi_jwt_app:app``.
"""

from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt_payloads import SECRET

app = FastAPI()
bearer = HTTPBearer()


async def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
) -> dict:
    try:
        return jwt.decode(credentials.credentials, SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError as error:
        raise HTTPException(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from None


@app.get("/")
async def index(user: Annotated[dict, Depends(current_user)]):
    return {"message": "Hello, World!"}
