"""tools/cycles.py, which `make lint` runs: it must find a cycle where there
is one, in Python and in Rust, and find none in Cello itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.cycles import ROOT, cycles, python_graph, rust_graph


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_python_cycle_through_a_function_level_import_is_found(tmp_path):
    package = write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "from pkg.b import thing\n",
            "b.py": "def thing():\n    from pkg import c\n",
            "c.py": "import pkg.a\n",
            "leaf.py": "from pkg.a import x\n",
        },
    )
    assert cycles(python_graph(package)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_a_rust_cycle_between_folders_is_found_but_a_parent_and_child_may_meet(tmp_path):
    src = write(
        tmp_path / "src",
        {
            "lib.rs": "mod a; mod b;\n",
            "a/mod.rs": "mod inner;\nuse crate::a::inner::X;\nuse crate::b::Y;\n",
            "a/inner.rs": "use super::Z; use crate::a::Z;\n",
            "b.rs": "use crate::{a::inner::X, c};\n// use crate::nothing\n",
            "c.rs": "",
        },
    )
    graph = rust_graph(src)
    assert graph["a::inner"] == set()  # a child naming its parent is no edge
    # `b` names `a::inner`: to `b`, that is the folder `a`, which names `b`.
    assert graph["b"] == {"a", "a::inner", "c"}
    assert cycles(graph) == [["a", "b"]]


@pytest.mark.skipif(
    not (ROOT / "python" / "cello").is_dir(), reason="the sources are not beside the tests"
)
def test_cello_has_no_import_cycles():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cycles.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert "no import cycles" in result.stdout
