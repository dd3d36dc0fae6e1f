"""Shared fixtures of the unit and CLI tiers: a temporary state dir, a CLI runner bound to
it and a ready gateway (interface + tenant). Helpers that tests import live in wggwtest.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

_OWN_RUN_DIR: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Give this test run a runtime directory of its own (WGGW_RUN_DIR, inherited by every wggw
    the tests start), so it neither reads nor disturbs the files of another wggw on the host."""
    global _OWN_RUN_DIR
    if not os.environ.get("WGGW_RUN_DIR"):
        _OWN_RUN_DIR = tempfile.mkdtemp(prefix="wggw-test-run-")
        os.environ["WGGW_RUN_DIR"] = _OWN_RUN_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_RUN_DIR is not None:
        shutil.rmtree(_OWN_RUN_DIR, ignore_errors=True)
        os.environ.pop("WGGW_RUN_DIR", None)


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
    cli(
        "tenant",
        "add",
        "acme",
        "--pool",
        "10.10.0.0/24",
        "--pool",
        "fd00:10::/64",
        "--egress",
        "203.0.113.10",
        "--egress",
        "2001:db8::10",
    )
    return cli
