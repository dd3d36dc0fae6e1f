"""The audit hash chain on every store (SQLite, sealed SQLite, PostgreSQL): who did what,
`audit verify` intact; rows tampered with by SQL exit 5 naming the first bad record; a
PostgreSQL store of schema 2 gets its records chained by the migration; `store migrate --to`
keeps a chain that verifies to the same head; the agent's own repair record does not wake
it on PostgreSQL's generation counter."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import replace

import psycopg
import pytest
from wggwtest import AUDIT_TAMPER

from wggw.core import audit
from wggw.core.errors import EXIT_AUDIT_BROKEN
from wggw.ops.state import open_existing


def _sql(kind: str, state_dir, *statements: str) -> None:
    """Run `statements` on the store's database directly, as someone with write access."""
    if kind == "postgresql":
        with psycopg.connect(os.environ["WGGW_DB"], autocommit=True) as pg:
            for sql in statements:
                pg.execute(sql.encode())  # bytes: a literal SQL text, no placeholders
        return
    db = sqlite3.connect(state_dir / "wggw.db", isolation_level=None)
    try:
        for sql in statements:
            db.execute(sql)
    finally:
        db.close()


def _records(gw, *args) -> list[dict]:
    return json.loads(gw("audit", "--json", *args).output)


def test_commands_are_chained_with_who_on_every_store(kind, gw, monkeypatch) -> None:
    monkeypatch.setenv("SUDO_USER", "alice")
    gw("peer", "add", "acme/bob")
    gw("peer", "remove", "acme/bob")
    recs = _records(gw)
    assert [r["kind"] for r in recs] == ["interface.add", "tenant.add", "peer.add", "peer.remove"]
    assert [r["seq"] for r in recs] == [1, 2, 3, 4]
    assert all(r["prev"] == p["hash"] for p, r in zip(recs, recs[1:], strict=False))
    bob = recs[2]
    assert bob["user"] == "alice" and bob["command"] == "wggw peer add"
    assert isinstance(bob["uid"], int) and bob["keys"] == recs[3]["keys"] and bob["keys"]
    out = gw("audit", "verify").output
    assert out.startswith("audit chain intact: 4 record(s); head 4:"), out
    assert out.split("head ")[1].strip() == f"4:{recs[3]['hash']}"


@pytest.mark.parametrize("case", list(AUDIT_TAMPER))
def test_tampering_by_sql_exits_5_on_every_store(kind, gw, state_dir, case: str) -> None:
    gw("peer", "add", "acme/a")
    gw("peer", "add", "acme/b")
    assert "intact: 4 record(s)" in gw("audit", "verify").output
    statements, seq, words = AUDIT_TAMPER[case]
    _sql(kind, state_dir, *statements)
    lines = gw("audit", "verify", code=EXIT_AUDIT_BROKEN).output.strip().splitlines()
    assert len(lines) == 1 and f"audit chain broken at record {seq}:" in lines[0], lines
    assert words in lines[0]
    if case == "tail":  # a later command does not paper over the cut
        gw("peer", "add", "acme/c")
        assert "broken at record 4" in gw("audit", "verify", code=EXIT_AUDIT_BROKEN).output
    if case == "head":  # commands go on from the last record (and bring the head back)
        gw("peer", "add", "acme/c")
        assert "audit chain intact: 5 record(s)" in gw("audit", "verify").output


def test_a_schema_2_postgresql_store_gets_its_records_chained(pg_url, key_file, cli, monkeypatch):
    """Migration 3's data step (sqlite._chain_old_events) on a psycopg connection."""
    monkeypatch.setenv("WGGW_DB", pg_url)
    cli("init")
    old = [(1.5, "tenant.add", "acme"), (2.25, "peer.add", "acme/a")]
    _sql(
        "postgresql",
        None,
        "DELETE FROM events",
        "DROP TABLE audit_head",
        # migration 4 (the fleet) too, so that it runs again after migration 3
        "DROP TABLE gateways, gateway_reports, peer_reports",
        "ALTER TABLE interfaces DROP COLUMN gateways",
        "ALTER TABLE tenants DROP COLUMN gateway, DROP COLUMN moving_to",
        *(
            f'ALTER TABLE events DROP COLUMN "{c}"'
            for c in ("uid", "user", "command", "keys", "prev", "hash")
        ),
        "UPDATE schema_version SET version = 2",
        *(
            "INSERT INTO events (at, kind, subject, details) VALUES "
            f"""({at}, '{k}', '{s}', '{{"public_key": "{"x" * 43}="}}')"""
            for at, k, s in old
        ),
    )
    assert cli("audit", "verify").output.startswith("audit chain intact: 2 record(s)")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:1")
    recs = _records(cli)
    assert [(r["seq"], r["kind"]) for r in recs] == [(1, "tenant.add"), (2, "peer.add")] + [
        (3, "interface.add")
    ]
    assert recs[0]["uid"] is None and recs[0]["time"].startswith("1970-01-01T00:00:01")
    assert recs[2]["prev"] == recs[1]["hash"] and recs[2]["command"] == "wggw interface add"
    assert "audit chain intact: 3 record(s)" in cli("audit", "verify").output


def test_migrate_to_postgresql_keeps_a_chain_that_verifies(
    gw, state_dir, pg_url, tmp_path, monkeypatch
):
    monkeypatch.delenv("WGGW_DB", raising=False)
    monkeypatch.setenv("SUDO_USER", "alice")
    gw("peer", "add", "acme/a", "acme/b")
    gw("peer", "remove", "acme/a")
    before = _records(gw)
    kept = gw("audit", "verify").output.split("head ")[1].strip()
    monkeypatch.setenv("WGGW_KEY_FILE", str(tmp_path / "fleet.key"))
    report = json.loads(gw("store", "migrate", "--to", pg_url, "--json").output)
    assert report["audit"] == "intact" and report["audit_head"] == kept
    monkeypatch.setenv("WGGW_DB", pg_url)
    assert _records(gw) == before  # every field, who and which command included
    assert gw("audit", "verify", "--expect", kept).output.split("head ")[1].strip() == kept
    gw("peer", "add", "acme/c")  # the chain goes on from the copied head
    after = _records(gw)
    assert after[:-1] == before and after[-1]["seq"] == before[-1]["seq"] + 1
    assert after[-1]["prev"] == before[-1]["hash"]
    assert f"intact: {len(after)} record(s)" in gw("audit", "verify", "--expect", kept).output
    # the copy is evidence too: an edit by SQL on PostgreSQL is caught
    _sql("postgresql", None, "UPDATE events SET \"user\" = 'mallory' WHERE id = 3")
    out = gw("audit", "verify", code=EXIT_AUDIT_BROKEN).output
    assert "broken at record 3" in out and "edited" in out


def test_migrate_copies_a_broken_chain_as_it_is(gw, state_dir, pg_url, tmp_path, monkeypatch):
    """A chain broken in the source is copied as evidence, and still says so on the copy."""
    monkeypatch.delenv("WGGW_DB", raising=False)
    gw("peer", "add", "acme/a")
    _sql("sqlite", state_dir, "UPDATE events SET subject = 'acme/mallory' WHERE id = 3")
    line = gw("audit", "verify", code=EXIT_AUDIT_BROKEN).output.strip()
    assert line == "wggw: error: audit chain broken at record 3: " + (
        "its content does not match its hash (edited)"
    )
    monkeypatch.setenv("WGGW_KEY_FILE", str(tmp_path / "fleet.key"))
    report = json.loads(gw("store", "migrate", "--to", pg_url, "--json").output)
    assert report["audit"] == line.removeprefix("wggw: error: ")
    monkeypatch.setenv("WGGW_DB", pg_url)
    assert gw("audit", "verify", code=EXIT_AUDIT_BROKEN).output.strip() == line


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_the_agents_own_record_does_not_wake_it_on_postgresql(kind, gw, state_dir, monkeypatch):
    """PostgreSQL's generation is a counter bumped per commit, not the newest seq: the
    agent's repair record (one commit, the agent holding the lock) must still count as seen."""
    from wggw.agent import apply
    from wggw.agent.backoff import Backoff
    from wggw.agent.loop import Agent
    from wggw.agent.metrics import AgentMetrics
    from wggw.backends.fake import FakeSystem

    gw("peer", "add", "acme/alice")
    system = FakeSystem()
    monkeypatch.setattr(apply, "system_for", lambda backend: system)
    with open_existing(state_dir) as store:
        assert type(store).__name__ == "PgStore"
        agent = Agent(store, None, lambda *a, **f: None, AgentMetrics(), backoff=Backoff())
        with store.locked():
            agent._reconcile_locked({"store"}, time.monotonic())  # the operator's intent
        gen = store.generation()
        assert agent.applied_gen == gen
        rules = sorted(system.state.rules, key=repr)
        system.state = replace(system.state, rules=frozenset(rules[1:]))  # drift
        with store.locked():
            agent._reconcile_locked({"drift"}, time.monotonic())
        rows, head = store.audit_rows()
        assert rows[-1]["kind"] == "agent.repair" and audit.verify(rows, head) is None
        assert store.generation() == gen + 1 == agent.applied_gen  # one commit, seen
        assert agent._store_generation() == agent.applied_gen  # the next poll: no wake
        gw("peer", "add", "acme/bob")  # an operator's change still wakes it
        assert agent._store_generation() == gen + 2 != agent.applied_gen


def test_a_host_change_is_recorded_in_the_store_in_force(kind, gw, state_dir) -> None:
    """`down` records into the store the command works on (WGGW_DB, WGGW_KEY_FILE), not
    always a plain SQLite store in the state dir."""
    from wggw.ops import audit as ops_audit

    assert ops_audit.record_in(state_dir, "down", "host", {"removed": 3}) is None
    last = _records(gw)[-1]
    assert (last["kind"], last["subject"], last["details"]) == ("down", "host", {"removed": 3})
    assert "intact: 3 record(s)" in gw("audit", "verify").output
