"""HTTP/3: the same app served over TCP and over QUIC (UDP) on one port.

    python examples/http3.py --port 8443

needs a certificate and key: CELLO_CERT and CELLO_KEY name PEM files
(for a local try, `mkcert localhost` makes a pair your machine trusts).
TCP responses carry `Alt-Svc: h3=":8443"`, which tells browsers and curl
(`curl --http3`) that HTTP/3 is there too."""

import os

from cello import App, Http3Config, TlsConfig

app = App()


@app.get("/")
def index(request):
    # "3" over HTTP/3, "1.1" over TCP: one handler, one pipeline.
    return {"hello": "world", "http_version": request.http_version}


@app.post("/echo")
def echo(request):
    return {"received": len(request.body())}


RUN_OPTIONS = {
    "tls": TlsConfig(
        cert_path=os.environ.get("CELLO_CERT", "cert.pem"),
        key_path=os.environ.get("CELLO_KEY", "key.pem"),
    ),
    "http3": Http3Config(enabled=True, max_idle_timeout=30),
}

if __name__ == "__main__":
    app.run(**RUN_OPTIONS)
