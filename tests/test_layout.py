"""The layout's arrows point one way: cli -> ops -> (store, backends) -> core.

Read from the source (ast), not from a running import, so a lazy import inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "wggw"

# What the pure core may not reach for: the rest of wggw, I/O, processes, the clock.
CORE_FORBIDDEN_WGGW = (
    "wggw.store",
    "wggw.backends",
    "wggw.ops",
    "wggw.cli",
    "wggw.lab",
    "wggw.fsutil",
)
CORE_FORBIDDEN_STDLIB = {
    "os",
    "io",
    "socket",
    "subprocess",
    "sqlite3",
    "shutil",
    "tempfile",
    "pathlib",
    "time",
    "select",
    "signal",
    "threading",
    "asyncio",
    "fcntl",
    "importlib",
    "random",
    "urllib",
}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (wggw uses absolute imports)"
            base = node.module or ""
            mods.add(base)
            mods |= {f"{base}.{a.name}" for a in node.names}
    return mods


def _modules(folder: str) -> list[Path]:
    return sorted((PKG / folder).rglob("*.py")) if folder else sorted(PKG.rglob("*.py"))


def _under(mod: str, prefixes) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_core_is_pure(path: Path) -> None:
    mods = _imports(path)
    assert not [m for m in mods if _under(m, CORE_FORBIDDEN_WGGW)], path
    assert not {m.split(".")[0] for m in mods} & CORE_FORBIDDEN_STDLIB, path
    assert not [m for m in mods if m.startswith("pyroute2")], path
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in CLOCK_CALLS, f"{path}:{node.lineno}: reads the clock"


@pytest.mark.parametrize("path", _modules("cli"), ids=lambda p: p.name)
def test_cli_reaches_only_ops_and_core(path: Path) -> None:
    wggw = {m for m in _imports(path) if m == "wggw" or m.startswith("wggw.")}
    allowed = (
        "wggw.cli",
        "wggw.ops",
        "wggw.core",
        "wggw.agent",
    )  # agent: a caller of ops, like cli
    bad = sorted(
        m for m in wggw if m != "wggw" and not _under(m, allowed) and m not in ("wggw.__version__",)
    )
    assert not bad, f"{path.relative_to(PKG.parent)} imports {bad}: go through wggw.ops"


@pytest.mark.parametrize(
    "path",
    [p for p in _modules("") if "backends" not in p.parts],
    ids=lambda p: str(p.relative_to(PKG)),
)
def test_only_backends_import_pyroute2(path: Path) -> None:
    assert not [m for m in _imports(path) if m.split(".")[0] == "pyroute2"], path


@pytest.mark.parametrize(
    "folder,upper",
    [
        ("core", ("wggw.ops", "wggw.cli", "wggw.lab", "wggw.agent")),
        ("store", ("wggw.ops", "wggw.cli", "wggw.lab", "wggw.agent")),
        ("backends", ("wggw.ops", "wggw.cli", "wggw.lab", "wggw.agent")),
        ("ops", ("wggw.cli", "wggw.lab", "wggw.agent")),
        ("agent", ("wggw.cli", "wggw.lab")),  # the agent sits beside the CLI, on top of ops
    ],
)
def test_lower_layers_never_import_upper_ones(folder: str, upper: tuple[str, ...]) -> None:
    for path in _modules(folder):
        bad = [m for m in _imports(path) if _under(m, upper)]
        assert not bad, f"{path.relative_to(PKG.parent)} imports {bad}"


def test_peer_apply_hands_over_to_the_agent_in_one_call_into_ops() -> None:
    # cli/quick.py holds the one hand-over; the typer command and the quick path both use it
    text = (PKG / "cli" / "quick.py").read_text()
    assert text.count("apply_peer_via_agent(") == 1
    assert "from wggw.ops.agentclient import apply_peer_via_agent" in text
    assert "quick.apply_peer(" in (PKG / "cli" / "peer.py").read_text()


def test_the_product_never_imports_the_lab() -> None:
    for path in _modules(""):
        if "lab" in path.relative_to(PKG).parts:
            continue
        assert not [m for m in _imports(path) if _under(m, ("wggw.lab",))], path


def test_every_module_says_its_job() -> None:
    missing = [
        str(p.relative_to(PKG.parent))
        for p in _modules("")
        if ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert not missing, f"modules without a docstring: {missing}"
