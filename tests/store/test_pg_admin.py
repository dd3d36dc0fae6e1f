"""`store migrate` into PostgreSQL, `store rekey`, the key file's rules, and a PostgreSQL that
is down: real SQLite stores, a real PostgreSQL cluster, the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from wggw.core.errors import StoreUnavailableError
from wggw.ops.state import open_existing


def _secrets(state_dir: Path, db: str | None = None) -> list[str]:
    with open_existing(state_dir, db) as store:
        state = store.load()
    out = [i.private_key.reveal() for i in state.interfaces]
    for p in state.peers:
        out += [s.reveal() for s in (p.private_key, p.psk) if s is not None]
    return sorted(out)


def _sqlite_dump(state_dir: Path) -> str:
    with sqlite3.connect(state_dir / "wggw.db") as db:
        return "\n".join(db.iterdump())


@pytest.fixture
def plain(gw, monkeypatch):
    """A plain SQLite store with three peers (WGGW_DB and WGGW_KEY_FILE unset)."""
    monkeypatch.delenv("WGGW_DB", raising=False)
    monkeypatch.delenv("WGGW_KEY_FILE", raising=False)
    gw("peer", "add", "acme/alice", "acme/bob", "acme/carol")
    gw("peer", "remove", "acme/bob")
    return gw


def test_migrate_copies_into_an_empty_database_and_verifies(
    plain, state_dir, pg_url, pg_cluster, tmp_path, monkeypatch
):
    peers = json.loads(plain("peer", "list", "--json").output)
    secrets = _secrets(state_dir)
    events = len(open_existing(state_dir).events())
    key = tmp_path / "fleet.key"
    monkeypatch.setenv("WGGW_KEY_FILE", str(key))
    out = json.loads(plain("store", "migrate", "--to", pg_url, "--json").output)
    assert (out["interfaces"], out["tenants"], out["peers"], out["events"]) == (1, 1, 2, events)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # made by migrate
    # the fleet now reads the same state from PostgreSQL, secrets sealed there
    monkeypatch.setenv("WGGW_DB", pg_url)
    assert json.loads(plain("peer", "list", "--json").output) == peers
    assert _secrets(state_dir, pg_url) == secrets
    dump = pg_cluster.dump(pg_url)
    assert not [s for s in secrets if s in dump]
    plain("peer", "add", "acme/dave")  # bob's address again: the copy allocates like the source
    dave = json.loads(plain("peer", "show", "acme/dave", "--json").output)
    assert dave["addresses"][0] == "10.10.0.3/32"
    # a second migrate into the now non-empty database: refused, one line, nothing changed
    monkeypatch.delenv("WGGW_DB")
    before = pg_cluster.dump(pg_url)
    res = plain("store", "migrate", "--to", pg_url, code=2)
    assert res.output.count("\n") == 1 and "already holds a wggw store" in res.output
    assert pg_cluster.dump(pg_url) == before


def test_migrate_of_a_sealed_store_keeps_its_key(key_file, gw, state_dir, pg_url):
    gw("peer", "add", "acme/alice")
    secrets = _secrets(state_dir)
    gw("store", "migrate", "--to", pg_url)
    assert _secrets(state_dir, pg_url) == secrets


def test_rekey_reseals_every_secret_and_replaces_the_key_file(
    kind, gw, state_dir, tmp_path, monkeypatch
):
    gw("peer", "add", "acme/alice", "acme/bob")
    secrets = _secrets(state_dir)
    if kind == "sqlite":  # encrypting a plain store: WGGW_KEY_FILE names a new file
        monkeypatch.setenv("WGGW_KEY_FILE", str(tmp_path / "new.key"))
    key = Path(os.environ["WGGW_KEY_FILE"])
    old_key = key.read_text() if key.exists() else None
    out = json.loads(gw("store", "rekey", "--json").output)
    assert out["peers"] == 2 and out["new_key_id"] != out["old_key_id"]
    assert key.read_text() != old_key and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not Path(f"{key}.new").exists()
    assert _secrets(state_dir) == secrets  # the same keys, under the new key
    if kind != "postgresql":
        dump = _sqlite_dump(state_dir)
        assert not [s for s in secrets if s in dump]
    if old_key is not None:  # the old key opens nothing any more
        key.write_text(old_key)
        res = gw("peer", "list", code=2)
        assert "are sealed with key" in res.output and res.output.count("\n") == 1


def test_key_file_readable_by_others_is_refused(key_file, gw):
    os.chmod(key_file, 0o644)
    res = gw("peer", "list", code=2)
    assert "readable by other users" in res.output and res.output.count("\n") == 1


def test_sealed_store_without_its_key_file_is_one_clear_error(key_file, gw, monkeypatch):
    monkeypatch.delenv("WGGW_KEY_FILE")
    res = gw("peer", "list", code=2)
    assert "are encrypted" in res.output and "WGGW_KEY_FILE" in res.output


def test_postgresql_down_is_one_line_and_exit_69(
    key_file, pg_url, monkeypatch, pg_cluster, cli, state_dir
):
    monkeypatch.setenv("WGGW_DB", pg_url)
    gw = cli
    gw("init")
    gw("interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "192.0.2.1:51821")
    resident = open_existing(state_dir)  # like the agent: one store open across the outage
    gen = resident.generation()
    pg_cluster.stop()
    try:
        res = gw("interface", "list", code=69)
        assert res.output.count("\n") == 1
        assert res.output.startswith("wggw: error: cannot reach PostgreSQL")
        with pytest.raises(StoreUnavailableError):
            resident.generation()
    finally:
        pg_cluster.start()
    assert "wg1" in gw("interface", "list").output
    assert resident.generation() == gen  # a new session once the server is back
    resident.close()


def test_a_password_on_the_command_line_is_refused(cli, monkeypatch):
    monkeypatch.delenv("WGGW_DB", raising=False)
    res = cli("--db", "postgresql://wggw:hunter2@db.invalid/wggw", "peer", "list", code=2)
    assert res.output.startswith("wggw: error: --db: the URL holds a password")
    assert "hunter2" not in res.output and res.output.count("\n") == 1
    res = cli("store", "migrate", "--to", "postgresql:///w?password=hunter2", code=2)
    assert "--to: the URL holds a password" in res.output and "hunter2" not in res.output


def test_a_tampered_sealed_secret_is_one_clear_error(key_file, gw, state_dir):
    gw("peer", "add", "acme/alice")
    with sqlite3.connect(state_dir / "wggw.db") as db:
        (psk,) = db.execute("SELECT psk FROM peers").fetchone()
        flipped = psk[:-6] + ("A" if psk[-6] != "A" else "B") + psk[-5:]
        db.execute("UPDATE peers SET psk = ?", (flipped,))
    res = gw("peer", "config", "acme/alice", code=1)
    assert res.output.count("\n") == 1 and "does not open with key" in res.output
