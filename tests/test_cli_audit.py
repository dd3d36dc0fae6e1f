"""`wggw audit` and `wggw audit verify` on a real SQLite store: who did what, filters, JSON;
tampering with the rows (edit, delete, reorder, cut-off tail) exits 5 naming the first bad
record; no change commits without its record; a schema-2 store's records are chained by the
migration; and no private key or PSK ever reaches a record or the output."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from wggwtest import AUDIT_TAMPER

from wggw.core.errors import EXIT_AUDIT_BROKEN, EXIT_USAGE, StoreError
from wggw.core.keys import Secret
from wggw.store.sqlite import MIGRATIONS, open_store


def _db(state_dir) -> sqlite3.Connection:
    return sqlite3.connect(state_dir / "wggw.db", isolation_level=None)


def _records(cli, *args) -> list[dict]:
    return json.loads(cli("audit", "--json", *args).output)


def test_each_command_is_recorded_with_who_and_which_command(gw, cli, monkeypatch) -> None:
    monkeypatch.setenv("SUDO_USER", "alice")
    cli("peer", "add", "acme/bob")
    cli("tenant", "set", "acme", "--rotate-after", "30d")
    cli("peer", "remove", "acme/bob")
    recs = _records(cli)
    assert [r["kind"] for r in recs] == [
        "interface.add",
        "tenant.add",
        "peer.add",
        "tenant.set",
        "peer.remove",
    ]
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    bob = recs[2]
    assert bob["subject"] == "acme/bob" and bob["command"] == "wggw peer add"
    assert bob["user"] == "alice" and isinstance(bob["uid"], int) and bob["time"].endswith("Z")
    assert len(bob["keys"]) == 1 and bob["keys"] == recs[4]["keys"]  # the same key, removed
    assert recs[0]["user"] != "alice"  # recorded before SUDO_USER was set
    text = cli("audit").output.splitlines()
    assert text[0].split() == ["TIME", "WHO", "COMMAND", "KIND", "OBJECT", "KEYS", "DETAILS"]
    assert "alice(" in text[3] and "peer.add" in text[3] and "acme/bob" in text[3]
    out = cli("audit", "verify").output
    assert out.startswith("audit chain intact: 5 record(s); head 5:")


def test_filters(gw, cli) -> None:
    cli("tenant", "add", "beta", "--pool", "10.20.0.0/24", "--egress", "203.0.113.20")
    cli("peer", "add", "beta/x")
    cli("peer", "add", "acme/y")
    assert [r["subject"] for r in _records(cli, "--tenant", "beta")] == ["beta", "beta/x"]
    assert [r["subject"] for r in _records(cli, "--tenant", "acme")] == ["acme", "acme/y"]
    assert len(_records(cli, "--since", "1h")) == 5
    assert _records(cli, "--since", "2999-01-01T00:00:00Z") == []
    assert _records(cli, "--since", "1h", "--tenant", "nobody") == []
    bad = cli("audit", "--since", "last week", code=EXIT_USAGE)
    assert "since" in bad.output and "last week" in bad.output


@pytest.mark.parametrize("case", list(AUDIT_TAMPER))
def test_tampering_is_named_and_exits_5(gw, cli, state_dir, case: str) -> None:
    cli("peer", "add", "acme/a")
    cli("peer", "add", "acme/b")
    statements, seq, words = AUDIT_TAMPER[case]
    with _db(state_dir) as db:
        for sql in statements:
            db.execute(sql)
    result = cli("audit", "verify", code=EXIT_AUDIT_BROKEN)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"audit chain broken at record {seq}:" in lines[0], lines
    assert words in lines[0]
    if case == "tail":  # a later command does not paper over the cut
        cli("peer", "add", "acme/c")
        assert "broken at record 4" in cli("audit", "verify", code=EXIT_AUDIT_BROKEN).output
    if case == "head":  # commands go on from the last record (and bring the head back)
        cli("peer", "add", "acme/c")
        assert "audit chain intact: 5 record(s)" in cli("audit", "verify").output


def test_no_change_without_its_record_and_no_record_without_its_change(gw, cli, state_dir):
    cli("peer", "add", "acme/nope/x", code=EXIT_USAGE)
    cli("peer", "add", "ghost/x", code=EXIT_USAGE)
    assert len(_records(cli)) == 2
    with open_store(state_dir) as store:
        peer = store.load()
    with open_store(state_dir) as store, pytest.raises(StoreError, match="secret"):
        with store.transaction() as tx:
            tx.remove_tenant("acme")
            tx.record_event("tenant.remove", "acme", {"psk": Secret._trusted("x" * 44)})
    with open_store(state_dir) as store:
        assert store.load().tenants == peer.tenants  # rolled back with the refused record
    assert len(_records(cli)) == 2


def test_secrets_never_reach_the_records_or_the_output(gw, cli, state_dir) -> None:
    for name in ("a", "b", "c"):
        cli("peer", "add", f"acme/{name}")
    with open_store(state_dir) as store:
        state = store.load()
    cli("peer", "remove", "acme/b")
    secrets = {i.private_key.reveal() for i in state.interfaces}
    for p in state.peers:
        secrets |= {s.reveal() for s in (p.private_key, p.psk) if s is not None}
    assert len(secrets) == 7  # wg0's, and a private key and a PSK of each peer
    with _db(state_dir) as db:
        rows = db.execute("SELECT * FROM events").fetchall()
        rows += db.execute("SELECT * FROM audit_head").fetchall()
    assert len(rows) == 7  # 6 records and the head
    dumped = "\n".join(repr(r) for r in rows)
    outputs = [cli("audit").output, cli("audit", "--json").output, cli("audit", "verify").output]
    for secret in secrets:
        assert secret not in dumped
        assert all(secret not in out for out in outputs)
    assert state.peers[0].public_key in dumped  # public keys are no secret


def test_schema_2_records_are_chained_by_the_migration(state_dir, cli) -> None:
    state_dir.mkdir(mode=0o700)
    with _db(state_dir) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for step in MIGRATIONS[:2]:
            for statement in step:
                assert isinstance(statement, str)
                db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (2)")
        for at, kind, subject in ((1.5, "tenant.add", "acme"), (2.25, "peer.add", "acme/a")):
            db.execute(
                "INSERT INTO events (at, kind, subject, details) VALUES (?, ?, ?, ?)",
                (at, kind, subject, json.dumps({"public_key": "x" * 43 + "="})),
            )
    assert cli("audit", "verify").output.startswith("audit chain intact: 2 record(s)")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:1")
    recs = _records(cli)
    assert [r["seq"] for r in recs] == [1, 2, 3] and recs[0]["uid"] is None
    assert recs[2]["prev"] == recs[1]["hash"] and recs[2]["command"] == "wggw interface add"
    assert "audit chain intact: 3 record(s)" in cli("audit", "verify").output


def test_an_empty_store_verifies(cli) -> None:
    cli("init")
    assert cli("audit", "verify").output.strip() == "audit chain intact: no records yet"
    assert _records(cli) == []


def test_every_store_write_in_ops_records_an_event() -> None:
    """A new operation that writes the store without a record fails here (read from the
    source, like tests/test_layout.py)."""
    import ast
    import re
    from pathlib import Path

    import wggw.ops

    write = re.compile(r"(add|update|remove)_(interface|tenant|peer)")
    checked = 0
    for path in sorted(Path(wggw.ops.__file__).parent.glob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            calls = {
                n.func.attr
                for n in ast.walk(fn)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name)
                and n.func.value.id == "tx"
            }
            if any(write.fullmatch(c) for c in calls):
                checked += 1
                assert "record_event" in calls, f"{path.name}:{fn.name} writes without a record"
    assert checked >= 6


def test_a_rewritten_chain_is_caught_by_a_head_kept_elsewhere(gw, cli, state_dir) -> None:
    """A writer of the database who rebuilds the chain from record 2 on, head and all, passes
    plain `verify`; the head printed before (--expect) catches it."""
    from wggw.core import audit

    cli("peer", "add", "acme/a")
    kept = cli("audit", "verify").output.split("head ")[1].strip()
    assert re.fullmatch(r"3:[0-9a-f]{64}", kept)
    cli("audit", "verify", "--expect", kept)
    cli("peer", "add", "acme/b")
    cli("audit", "verify", "--expect", kept)  # still holds record 3 as it was
    with open_store(state_dir) as store:
        rows, _ = store.audit_rows()
    recs = [audit.record_of(r) for r in rows]
    head, forged = audit.Head(1, recs[0].hash), []
    for r in recs[1:]:
        subject = "acme/mallory" if r.subject == "acme/a" else r.subject
        f = audit.chain(
            head,
            at=r.at,
            kind=r.kind,
            subject=subject,
            uid=r.uid,
            user=r.user,
            command=r.command,
            details=r.details,
        )
        forged.append(f)
        head = audit.Head(f.seq, f.hash)
    with _db(state_dir) as db:
        for f in forged:
            db.execute(
                "UPDATE events SET subject = ?, prev = ?, hash = ? WHERE id = ?",
                (f.subject, f.prev, f.hash, f.seq),
            )
        db.execute("UPDATE audit_head SET seq = ?, hash = ?", (head.seq, head.hash))
    cli("audit", "verify")  # consistent in itself
    out = cli("audit", "verify", "--expect", kept, code=EXIT_AUDIT_BROKEN).output
    assert "broken at record 3: its hash differs from the head kept elsewhere" in out
    bad = cli("audit", "verify", "--expect", "3:xyz", code=EXIT_USAGE).output
    assert "expect" in bad and "SEQ:HASH" in bad
    out = cli("audit", "verify", "--expect", "9:" + "0" * 64, code=EXIT_AUDIT_BROKEN).output
    assert "broken at record 9: missing" in out
