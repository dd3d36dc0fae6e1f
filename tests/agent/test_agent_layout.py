"""The agent sits beside the CLI: it may use ops, store, backends and core, never the CLI or
the lab; nothing below it imports it; and its CLI hook stays one call into ops."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "wggw"


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mods.add(node.module or "")
    return mods


def test_agent_imports_neither_cli_nor_lab() -> None:
    for path in (PKG / "agent").rglob("*.py"):
        bad = [m for m in _imports(path) if m.startswith(("wggw.cli", "wggw.lab"))]
        assert not bad, f"{path.name} imports {bad}"


def test_lower_layers_do_not_import_the_agent() -> None:
    for folder in ("core", "store", "backends", "ops"):
        for path in (PKG / folder).rglob("*.py"):
            assert not [m for m in _imports(path) if m.startswith("wggw.agent")], path


def test_peer_cli_hook_is_one_call_into_ops() -> None:
    text = (PKG / "cli" / "peer.py").read_text()
    assert text.count("apply_peer_via_agent(") == 1
    assert "from wggw.ops.agentclient import apply_peer_via_agent" in text
