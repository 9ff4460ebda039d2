"""Imports run one way: core ← store ← providers ← engine ← addons ← cli ← kleis.py; admin sits beside addons and
imports up to the engine (its metrics), never addons; admin and cli are siblings. Nothing in engine/ or below it
imports mitmproxy, and every module of addons/ does: addons/ is the mitmproxy adapter and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"core": 0, "store": 1, "providers": 2, "engine": 3, "addons": 4, "admin": 4, "cli": 5}
BESIDE = {"cli": {"admin"}}  # a higher layer that still may not import this one
FREE_OF_MITMPROXY = ("core", "store", "providers", "engine")
ADAPTER = "addons"


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
                if target in LAYERS and target != package and (LAYERS[target] >= level or target in BESIDE.get(package, ())):
                    problems.append(f"{path.relative_to(root)}:{line} imports {module} ({package} may not import {target})")
    return problems


def test_no_import_runs_up_a_layer() -> None:
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "providers" / "bad.py").write_text("def f():\n    from addons.sse import SSEParser\n")
    (tmp_path / "cli" / "sibling.py").write_text("import admin.serving\n")
    (tmp_path / "engine" / "bad.py").write_text("from addons.kleis import Kleis\n")
    (tmp_path / "admin" / "bad.py").write_text("from addons.metrics import KleisMetrics\n")
    (tmp_path / "addons" / "fine.py").write_text("from engine.follower import StoreFollower\nfrom core import config\n")
    (tmp_path / "cli" / "fine.py").write_text("from addons.server import run_dump\n")
    assert upward_imports(tmp_path) == [
        "providers/bad.py:2 imports addons.sse (providers may not import addons)",
        "engine/bad.py:1 imports addons.kleis (engine may not import addons)",
        "admin/bad.py:1 imports addons.metrics (admin may not import addons)",
        "cli/sibling.py:1 imports admin.serving (cli may not import admin)",
    ]


def mitmproxy_imports(root: Path = ROOT) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line} imports {module}"
        for package in FREE_OF_MITMPROXY
        for path in sorted((root / package).rglob("*.py"))
        for line, module in imported_packages(path)
        if module.split(".")[0] == "mitmproxy"
    ]


def test_the_engine_and_below_import_no_mitmproxy() -> None:
    assert mitmproxy_imports() == []


def test_the_mitmproxy_check_sees_an_import(tmp_path: Path) -> None:
    for package in FREE_OF_MITMPROXY:
        (tmp_path / package).mkdir()
    (tmp_path / "engine" / "loop.py").write_text("def f():\n    from mitmproxy import http\n")
    (tmp_path / "core" / "fine.py").write_text("import asyncio\n")
    assert mitmproxy_imports(tmp_path) == ["engine/loop.py:2 imports mitmproxy"]


def modules_without_mitmproxy(root: Path = ROOT) -> list[str]:
    """The adapter's modules that import no mitmproxy: they belong in the engine (or below)."""
    return [
        str(path.relative_to(root))
        for path in sorted((root / ADAPTER).rglob("*.py"))
        if path.name != "__init__.py" and not any(module.split(".")[0] == "mitmproxy" for _, module in imported_packages(path))
    ]


def test_every_adapter_module_imports_mitmproxy() -> None:
    assert modules_without_mitmproxy() == []


def test_the_adapter_check_sees_a_module_without_mitmproxy(tmp_path: Path) -> None:
    (tmp_path / ADAPTER).mkdir()
    (tmp_path / ADAPTER / "__init__.py").write_text("")
    (tmp_path / ADAPTER / "hooks.py").write_text("from mitmproxy import http\n")
    (tmp_path / ADAPTER / "lazy.py").write_text("def f():\n    import mitmproxy.tools.web.app\n")
    (tmp_path / ADAPTER / "plain.py").write_text("import asyncio\nfrom engine import pipeline\n")
    assert modules_without_mitmproxy(tmp_path) == ["addons/plain.py"]
