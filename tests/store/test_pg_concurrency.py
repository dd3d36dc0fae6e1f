"""Many writers on one PostgreSQL store at once, as operators and cron jobs on several hosts:
separate processes (separate sessions), every allocation unique, nothing lost; the command
lock is a database lock; every commit NOTIFYs its generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from wggwtest import ROOT, run_wggw

from wggw.core.errors import LockBusyError
from wggw.ops.state import open_existing

WORKERS = 4
PEERS_EACH = 8


@pytest.fixture
def pg_gw(key_file, pg_url, monkeypatch, cli):
    monkeypatch.setenv("WGGW_DB", pg_url)
    cli("init")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "192.0.2.1:51820")
    cli("tenant", "add", "acme", "--pool", "10.10.0.0/24", "--egress", "203.0.113.10")
    return cli


# One operator's host: a tenant of its own, then peers, each a command of its own (a store
# opened, one transaction, closed); one interpreter per worker keeps start-up cost out.
WORKER = """
import sys
from pathlib import Path
from wggw.ops import objects
from wggw.ops.state import open_existing
state_dir, i, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
with open_existing(state_dir) as store:
    objects.add_tenant(store, f"t{i}", [f"10.{100 + i}.0.0/24"], [f"203.0.113.{100 + i}"])
for j in range(n):
    with open_existing(state_dir) as store:
        objects.add_peer(store, f"acme/w{i}-{j}")
"""


def _worker(state_dir, i: int) -> tuple[int, str]:
    res = subprocess.run(
        [sys.executable, "-c", WORKER, str(state_dir), str(i), str(PEERS_EACH)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return res.returncode, res.stderr


def test_concurrent_writers_allocate_uniquely_and_lose_nothing(pg_gw, state_dir):
    with open_existing(state_dir) as store:
        gen0 = store.generation()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda i: _worker(state_dir, i), range(WORKERS)))
    assert [r for r in results if r[0] != 0] == []
    peers = json.loads(pg_gw("peer", "list", "--json").output)
    assert len(peers) == WORKERS * PEERS_EACH  # none lost
    addresses = [a for p in peers for a in p["addresses"]]
    assert len(set(addresses)) == len(addresses)  # none shared
    tenants = json.loads(pg_gw("tenant", "list", "--json").output)
    tables = [t["table"] for t in tenants]
    assert len(tenants) == WORKERS + 1 and len(set(tables)) == len(tables)
    with open_existing(state_dir) as store:
        # one generation per committed command, in order, none skipped or shared
        assert store.generation() == gen0 + WORKERS * (PEERS_EACH + 1)


def test_the_command_lock_is_a_database_lock(pg_gw, state_dir, monkeypatch):
    with open_existing(state_dir) as a, open_existing(state_dir) as b:
        with a.locked():
            with pytest.raises(LockBusyError, match="held by another wggw process"):
                with b.locked(timeout=0.3):
                    pass
            res = run_wggw(state_dir, "peer", "add", "acme/x", env={"WGGW_LOCK_TIMEOUT": "0.5"})
            assert res.returncode == 75 and res.stderr.count("\n") == 1
        with b.locked(timeout=0.3):  # released with the session's lock
            pass


def test_every_commit_notifies_its_generation(pg_gw, state_dir, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN wggw_generation")
        pg_gw("peer", "add", "acme/alice")
        with open_existing(state_dir) as store:
            gen = store.generation()
        got = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert got == [str(gen)]
