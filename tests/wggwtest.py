"""Helpers the tests import (a module of its own: the name `conftest` is not unique in tests/)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wggw.lab.pgcluster import Cluster

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


NETNS_TOOLS = ("ip", "wg", "wg-quick", "wireguard-go", "nft")


def netns_unusable(tools: tuple[str, ...] = NETNS_TOOLS) -> str | None:
    """Why this host cannot run a root-only netns suite, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, wireguard-go, nft)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"needs {tool} on PATH (scripts/install-deps installs it)"
    probe = f"wggw-probe-{secrets.token_hex(3)}"
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
    if res.returncode != 0:
        return f"`ip netns add` does not work here: {res.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


def require_netns(suite: str, tools: tuple[str, ...] = NETNS_TOOLS) -> None:
    """Skip `suite` (with the reason) where it cannot run; in CI fail instead: CI runs as root on
    purpose, and a root-only tier that silently skipped there would hide regressions."""
    import pytest

    reason = netns_unusable(tools)
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"{suite} must run in CI: {reason}")
    if reason:
        pytest.skip(reason)


def require_pg(suite: str) -> None:
    """As require_netns, for a throwaway PostgreSQL (wggw/lab/pgcluster.py: root and the
    Debian package)."""
    import pytest

    from wggw.lab.pgcluster import unusable

    reason = unusable()
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"{suite} must run in CI: {reason}")
    if reason:
        pytest.skip(f"{suite}: {reason}")


@contextlib.contextmanager
def pg_cluster(suite: str) -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for `suite` (require_pg first), removed afterwards."""
    from wggw.lab.pgcluster import Cluster

    require_pg(suite)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


# Ways to break the audit chain with SQL (either store): statements, the first bad seq that
# `audit verify` names, and words of its line.
AUDIT_TAMPER = {
    "edit": (["UPDATE events SET subject = 'acme/mallory' WHERE id = 3"], 3, "edited"),
    "delete": (["DELETE FROM events WHERE id = 2"], 2, "found record 3"),
    "reorder": (
        [
            "UPDATE events SET id = 100 WHERE id = 2",
            "UPDATE events SET id = 2 WHERE id = 3",
            "UPDATE events SET id = 3 WHERE id = 100",
        ],
        2,
        "edited",
    ),
    "tail": (["DELETE FROM events WHERE id = 4"], 4, "tail was cut off"),
    "head": (["DELETE FROM audit_head"], 4, "no head"),
}
