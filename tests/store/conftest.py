"""Fixtures of the store tier: one throwaway PostgreSQL cluster per test session (removed also
when tests fail), a fresh database per test, a key file, and `kind`: each store in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wggwtest import pg_cluster as throwaway_cluster

from wggw.lab.pgcluster import Cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with throwaway_cluster("the PostgreSQL tests") as cluster:  # CI never skips it
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    return pg_cluster.createdb()


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """WGGW_KEY_FILE naming a file that `init` creates (0600)."""
    path = tmp_path / "wggw.key"
    monkeypatch.setenv("WGGW_KEY_FILE", str(path))
    return path


@pytest.fixture(params=["sqlite", "sqlite-sealed", "postgresql"])
def kind(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each store in turn, selected the way an operator does it (WGGW_DB, WGGW_KEY_FILE)."""
    monkeypatch.delenv("WGGW_DB", raising=False)
    monkeypatch.delenv("WGGW_KEY_FILE", raising=False)
    if request.param != "sqlite":
        monkeypatch.setenv("WGGW_KEY_FILE", str(tmp_path / "wggw.key"))
    if request.param == "postgresql":
        monkeypatch.setenv("WGGW_DB", request.getfixturevalue("pg_url"))
    return str(request.param)
