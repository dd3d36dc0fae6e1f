"""Shared fixtures of the unit and CLI tiers: a temporary state dir, a CLI runner bound to
it and a ready gateway (interface + tenant). Helpers that tests import live in wggwtest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


Run = Callable[..., "object"]


@pytest.fixture
def cli(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """cli(*args, code=0): run wggw in-process against the temp store and check the exit code."""
    from wggw.cli.app import app

    monkeypatch.delenv("WGGW_STATE_DIR", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, ["--state-dir", str(state_dir), *args])
        assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
        return result

    return run


@pytest.fixture
def gw(cli: Run) -> Run:
    """A store with interface wg0 and tenant acme (dual-stack pools and egress)."""
    cli("init")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:51820")
    cli("tenant", "add", "acme", "--pool", "10.10.0.0/24", "--pool", "fd00:10::/64",
        "--egress", "203.0.113.10", "--egress", "2001:db8::10")
    return cli
