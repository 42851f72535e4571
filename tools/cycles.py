"""Fails when modules import each other in a circle, in the Python package
or in a Rust crate. ``make lint`` runs it.

Python: every ``import`` of a ``cello`` module counts, wherever it is (inside
functions and ``if TYPE_CHECKING:`` blocks too): a cycle there is a design
cycle even when it cannot fail at import time.

Rust: a file's module depends on every module it names through ``crate::``
(``use`` lines and paths in code), and on the folders around that module. A
folder module and its own submodules may name each other; between any other
two modules, and between folders, dependencies go one way.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_graph(package: Path) -> dict[str, set[str]]:
    name = package.name
    modules = {
        ".".join((name, *p.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        for p in package.rglob("*.py")
    }
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in package.rglob("*.py"):
        module = ".".join((name, *path.relative_to(package).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from cello import _server` names a module; `from cello.x import Y` names x.
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
                targets.append(node.module)
            for target in targets:
                if target in modules and target != module and target != name:
                    graph[module].add(target)
    return graph


USE = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}")


def rust_graph(src: Path) -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in src.rglob("*.rs"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "mod":
            parts.pop()
        if parts in (["lib"], ["main"]):
            continue
        modules["::".join(parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        text = re.sub(r"//[^\n]*", "", path.read_text())
        named = [m.group(1) for m in USE.finditer(text)]
        for group in USE_GROUP.finditer(text):
            named += [item.strip() for item in group.group(1).split(",") if item.strip()]
        for name in named:
            target = _known_prefix(name, modules)
            # Naming `a::b` from outside `a` depends on the folder `a` too:
            # to everything outside it, a folder is one unit.
            while target is not None:
                if target != module and not _related(module, target):
                    graph[module].add(target)
                target = target.rpartition("::")[0] or None
    return graph


def _known_prefix(path: str, modules: dict[str, Path]) -> str | None:
    parts = path.split("::")
    for end in range(len(parts), 0, -1):
        candidate = "::".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _related(a: str, b: str) -> bool:
    return a.startswith(b + "::") or b.startswith(a + "::")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def report(what: str, graph: dict[str, set[str]]) -> bool:
    found = cycles(graph)
    for component in found:
        members = set(component)
        print(f"{what}: these modules import each other in a circle: {', '.join(component)}")
        for module in component:
            inside = sorted(graph[module] & members)
            print(f"  {module} -> {', '.join(inside)}")
    return not found


def main(argv: list[str]) -> int:
    ok = report("python/cello", python_graph(ROOT / "python" / "cello"))
    for crate in argv or ["rust/cello-core/src", "rust/cello-py/src", "asgi_compat/src"]:
        ok = report(crate, rust_graph(ROOT / crate)) and ok
    if ok:
        print("no import cycles")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
