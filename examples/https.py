"""HTTPS and HTTP/2: one port serving HTTP/1.1 and HTTP/2 over TLS.

    python examples/https.py --tls-cert cert.pem --tls-key key.pem

(`mkcert 127.0.0.1` or `trustme` make a certificate for local use.) Then

    curl --http2 --cacert ca.pem https://127.0.0.1:8443/

answers ``{"scheme": "https", "http_version": "2", "client_cert": null}``;
``kill -HUP <pid>`` reloads the certificate without closing a connection.
"""

from __future__ import annotations

import os

from cello import App, Http2Config, TlsConfig

app = App()


@app.get("/")
def index(request):
    return {
        "scheme": request.scheme,
        "http_version": request.http_version,
        "client_cert": request.client_cert,
    }


if __name__ == "__main__":
    # The certificate can also come from the environment; the flags win.
    cert, key = os.environ.get("CELLO_TLS_CERT"), os.environ.get("CELLO_TLS_KEY")
    app.run(
        port=8443,
        tls=TlsConfig(cert_path=cert, key_path=key) if cert and key else None,
        http2=Http2Config(),
    )
