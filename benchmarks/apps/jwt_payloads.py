"""The JWT table's secret and token, shared by its apps and the runner.

The token is HS256 over fixed claims that expire in 2100, made here with
the standard library so every run sends the same bytes.
"""

import base64
import hashlib
import hmac
import json

SECRET = b"benchmark-secret-benchmark-secret-0123"
CLAIMS = {"sub": "bench-user", "roles": ["reader"], "exp": 4102444800}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token() -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(CLAIMS, separators=(",", ":")).encode())
    signature = hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


TOKEN = _token()
