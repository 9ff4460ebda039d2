"""Imports run one way: core ← store ← providers ← addons ← admin, cli ← kleis.py (admin and cli are siblings)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"core": 0, "store": 1, "providers": 2, "addons": 3, "admin": 4, "cli": 4}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, function-level imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def upward_imports(root: Path = ROOT) -> list[str]:
    problems = []
    for package, level in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_packages(path):
                target = module.split(".")[0]
                if target in LAYERS and target != package and LAYERS[target] >= level:
                    problems.append(f"{path.relative_to(root)}:{line} imports {module} ({package} may not import {target})")
    return problems


def test_no_import_runs_up_a_layer() -> None:
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "providers" / "bad.py").write_text("def f():\n    from addons.sse import SSEParser\n")
    (tmp_path / "cli" / "sibling.py").write_text("import admin.serving\n")
    (tmp_path / "addons" / "fine.py").write_text("from providers.base import Provider\nfrom core import config\n")
    assert upward_imports(tmp_path) == [
        "providers/bad.py:2 imports addons.sse (providers may not import addons)",
        "cli/sibling.py:1 imports admin.serving (cli may not import admin)",
    ]
