"""`wggw store migrate --to URL`: a SQLite store copied into an empty PostgreSQL database in
one transaction (schema, objects with their secrets sealed, meta, the audit chain with its
head), then verified by reading it back through a fresh connection: counts per table, every
key's fingerprint, and the audit chain intact ending at the source's head."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wggw.core import audit
from wggw.core.errors import StoreError, ValidationError
from wggw.core.model import State
from wggw.store import pgsql, postgres, sealed
from wggw.store.sealed import Cipher
from wggw.store.sqlite import SqliteStore

TABLES = ("gateways", "interfaces", "tenants", "peers", "events")


def copy_to_empty(source: SqliteStore, url: str, cipher: Cipher) -> dict:
    """Copy `source` (its lock held) into the empty database at `url`; the verified counts
    and the key fingerprint digest. A non-empty target is refused with nothing changed."""
    label = pgsql.describe(url)
    state = source.load()
    columns, rows = _source_events(source)
    source_chain = source.audit_rows()
    conn = pgsql.connect(url)
    try:
        with pgsql.pg_errors(label), conn.transaction():
            # No wggw writer may start on the target while it is being filled.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (pgsql.LOCK_KEY,))
            _refuse_non_empty(conn, label)
            pgsql.migrate(conn, label)
            target = postgres.PgStore.attach(conn, url, source.state_dir, cipher)
            _copy(target, state, source)
            pgsql.copy_events(conn, columns, rows, source_chain[1])
            if pgsql.audit_rows(conn) != source_chain:  # as stored, to the byte: rolled back
                raise StoreError(f"the audit records copied into {label} differ; rolled back")
            pgsql.bump_generation(conn)
            counts = _counts(conn)
            _check_counts(counts, state, len(rows), label)
    finally:
        conn.close()
    return _verify(url, source.state_dir, cipher, state, source_chain)


def _source_events(source: SqliteStore) -> tuple[list[str], list[tuple]]:
    cur = source._db.execute("SELECT * FROM events ORDER BY id")
    return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]


def _refuse_non_empty(conn: pgsql.Conn, label: str) -> None:
    row = conn.execute("SELECT to_regclass('schema_version') AS t").fetchone()
    if row is None or row["t"] is None:
        return
    counts = _counts(conn)
    if any(counts.values()):
        held = ", ".join(f"{n} {t}" for t, n in counts.items())
        raise ValidationError(
            "to", f"{label} already holds a wggw store ({held}); migrate only into an empty one"
        )


def _counts(conn: pgsql.Conn) -> dict[str, int]:
    out = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
        out[table] = 0 if row is None else int(row["n"])
    return out


def _copy(target: postgres.PgStore, state: State, source: SqliteStore) -> None:
    tx = target._tx
    assert tx is not None
    for gateway in state.gateways:
        tx.add_gateway(gateway)
    for iface in state.interfaces:
        tx.add_interface(iface)
    for tenant in state.tenants:
        tx.add_tenant(tenant)
    for peer in state.peers:
        tx.add_peer(peer)
    for key, value in state.meta.items():
        if key != sealed.META_KEY_ID:
            tx.set_meta(key, str(value))
    tx.set_meta(sealed.META_KEY_ID, target.cipher.key_id if target.cipher else "")


def _check_counts(counts: dict[str, int], state: State, events: int, label: str) -> None:
    want = {
        "gateways": len(state.gateways),
        "interfaces": len(state.interfaces),
        "tenants": len(state.tenants),
        "peers": len(state.peers),
        "events": events,
    }
    if counts != want:
        raise StoreError(f"copy into {label} is incomplete ({counts} != {want}); rolled back")


def fingerprint_digest(state: State) -> str:
    """One hash over every object's keys (public, and a hash of each private key and PSK):
    equal digests mean every key arrived intact."""
    h = hashlib.sha256()

    def secret(s) -> str:
        return "-" if s is None else hashlib.sha256(s.reveal().encode()).hexdigest()

    for i in state.interfaces:
        h.update(f"i {i.name} {i.public_key} {secret(i.private_key)}\n".encode())
    for p in state.peers:
        r = p.retiring
        retiring = "-" if r is None else f"{r.public_key} {secret(r.psk)}"
        h.update(
            f"p {p.ref} {p.public_key} {secret(p.private_key)} {secret(p.psk)} "
            f"{retiring}\n".encode()
        )
    return h.hexdigest()


def _verify(
    url: str,
    state_dir: Path,
    cipher: Cipher,
    state: State,
    chain: tuple[list[dict], audit.Head | None],
) -> dict:
    """Read the committed copy back as any later command will, and compare. `chain`: the
    source's audit rows and kept head; `wggw audit verify` must say of the copy what it says
    of the source (a chain broken there is copied as evidence, not repaired or refused)."""
    events = len(chain[0])
    with postgres.PgStore(url, state_dir, cipher=cipher) as target:
        copied = target.load()
        copied_events = len(target.events())
        copied_chain = target.audit_rows()
    broken = audit.verify(*copied_chain)
    if broken != audit.verify(*chain) or copied_chain[1] != chain[1]:
        raise StoreError(
            f"the audit chain copied into {pgsql.describe(url)} does not verify as the "
            "source's does; do not use it: drop and recreate the database"
        )
    want, got = fingerprint_digest(state), fingerprint_digest(copied)
    meta = {k: v for k, v in copied.meta.items() if k != sealed.META_KEY_ID}
    source_meta = {k: v for k, v in state.meta.items() if k != sealed.META_KEY_ID}
    if want != got or copied_events != events or meta != source_meta:
        raise StoreError(
            f"the copy in {pgsql.describe(url)} differs from the source after commit "
            "(fingerprints, events or meta); do not use it: drop and recreate the database"
        )
    return {
        "target": pgsql.describe(url),
        "interfaces": len(copied.interfaces),
        "tenants": len(copied.tenants),
        "peers": len(copied.peers),
        "events": copied_events,
        "key_fingerprints": got,
        "audit": broken.line() if broken else "intact",
        "audit_head": None if chain[1] is None else f"{chain[1].seq}:{chain[1].hash}",
        "secrets_key_id": cipher.key_id,
    }
