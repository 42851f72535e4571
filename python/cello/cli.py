"""The ``cello`` command: ``cello run``, ``cello serve``, ``cello routes``,
``cello --version``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from cello import __version__
from cello._launch import run_app
from cello._settings import ConfigError, add_flags, resolve


def load_app(target: str) -> Any:
    """Imports ``pkg.module:attr`` (attr defaults to ``app``) from the current directory."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise ConfigError(f"expected pkg.module:app, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from None
    obj: Any = module
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr or 'app'!r}"
            ) from None
    return obj


def _app(target: str) -> Any:
    from cello.app import App

    app = load_app(target)
    if not isinstance(app, App):
        raise ConfigError(f"{target} is a {type(app).__name__}, not a cello.App")
    return app


def cmd_run(args: argparse.Namespace) -> int:
    app = _app(args.target)
    flags = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("target", "command", "func")
    }
    run_app(app, resolve({}, flags, reload_dir=os.getcwd()))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serves any ASGI application with Cello's server."""
    from cello.app import App

    target = load_app(args.target)
    if not callable(target):
        raise ConfigError(f"{args.target} is a {type(target).__name__}, not an ASGI application")
    if isinstance(target, App):
        app = target  # a Cello app is served natively, not through its ASGI door
    else:
        app = App()
        app.mount("", target, root_path=args.root_path or "")
    if args.request_id:
        app.enable_request_id()
    flags = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("target", "command", "func", "root_path", "request_id")
    }
    run_app(app, resolve({}, flags, reload_dir=os.getcwd()))
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    app = _app(args.target)
    rows = [(r.method, r.path, r.name) for r in app.routes]
    rows += [
        ("*", f"{m.prefix}/{{*path}}", f"mounted ASGI app {type(m.app).__name__}")
        for m in app._mounts
    ]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in
              enumerate(("METHOD", "PATH", "HANDLER"))]  # fmt: skip
    for row in [("METHOD", "PATH", "HANDLER"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cello", description="Cello web framework")
    parser.add_argument("--version", action="version", version=f"cello {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve a Cello app: cello run pkg.module:app")
    run.add_argument("target", help="pkg.module:app")
    add_flags(run)
    run.set_defaults(func=cmd_run)
    serve = sub.add_parser("serve", help="serve any ASGI app: cello serve pkg.module:app")
    serve.add_argument("target", help="pkg.module:app")
    serve.add_argument("--root-path", help="the path the app is mounted under behind a proxy")
    serve.add_argument(
        "--request-id",
        action="store_true",
        help="give every request an X-Request-ID, kept from the client when usable",
    )
    add_flags(serve)
    serve.set_defaults(func=cmd_serve)
    routes = sub.add_parser("routes", help="print the route table of an app")
    routes.add_argument("target", help="pkg.module:app")
    routes.set_defaults(func=cmd_routes)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
