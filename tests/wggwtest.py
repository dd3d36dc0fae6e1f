"""Helpers the tests import (a module of its own: the name `conftest` is not unique in tests/)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dump(state_dir: Path) -> list[str]:
    """Everything in the database as SQL text, for before/after comparisons."""
    with sqlite3.connect(state_dir / "wggw.db") as db:
        return list(db.iterdump())


def run_wggw(
    state_dir: Path, *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter (for import checks, locks and concurrency)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("WGGW_STATE_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "wggw.cli.app", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
