"""The PostgreSQL store (psycopg 3): the `Store`/`Tx` interface of store/sqlite.py on a database
that operators and gateways on many hosts share.

The schema is SQLite's migration list (sqlite.MIGRATIONS) in PostgreSQL's dialect (pg_ddl),
so one list of forward migrations serves both stores. Writers on any host serialise on one
session advisory lock (the command lock, like the SQLite store's flock) and UNIQUE
constraints back the allocations up. Every committed change bumps the one-row
`wggw_generation` table under its row lock and NOTIFYs `wggw_generation` with the number,
so generations are committed in order (a sequence's values are not) and a listener can wake
at once. Secrets are always sealed at rest here (store/sealed.py). Connecting, the schema
and the event SQL are in store/pgsql.py.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo

from wggw.core import audit
from wggw.core.errors import (
    LockBusyError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from wggw.core.fleet import GatewayReport, PeerReport
from wggw.core.model import Gateway, Interface, IPAddress, Peer, State, Tenant
from wggw.store import lock as storelock
from wggw.store import reports, sealed
from wggw.store.codec import (
    addresses_from_text,
    gateway_to_row,
    interface_from_row,
    interface_to_row,
    peer_from_row,
    peer_to_row,
    read_state,
    tenant_from_row,
    tenant_to_row,
)
from wggw.store.pgsql import (
    GATEWAY_LOCK_CLASS,
    LOCK_KEY,
    Conn,
    Cursor,
    audit_rows,
    bump_generation,
    connect,
    describe,
    gateway_lock_id,
    insert_audit,
    migrate,
    pg_errors,
    read_events,
    read_head,
    write_head,
)
from wggw.store.sealed import Cipher
from wggw.store.sqlite import SCHEMA_VERSION, Store, StoreMissingError, Tx


class PgTx(Tx):
    def __init__(self, store: PgStore):
        self._store = store
        self._conn = store._conn
        self.dirty = False
        self._head: audit.Head | None = None
        self._head_read = False
        self._head_moved = False

    def _exec(self, sql: str, args: Any = ()) -> Cursor:
        return self._conn.execute(sql, args)

    def _write(self, sql: str, args: Any = ()) -> Cursor:
        self.dirty = True
        return self._exec(sql, args)

    def load(self) -> State:
        return self._store._read_state()

    def _changed(self, cursor: Cursor, field: str, what: str) -> None:
        if cursor.rowcount == 0:
            raise NotFoundError(field, f"no {field} named {what!r}")

    def _insert(self, table: str, row: dict) -> None:
        row = self._store._seal(table, row)
        marks = ", ".join(f"%({c})s" for c in row)
        self._write(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", row)

    def _update(self, table: str, row: dict, keys: tuple[str, ...], field: str, what: str) -> None:
        row = self._store._seal(table, row)
        sets = ", ".join(f"{c} = %({c})s" for c in row if c not in keys)
        where = " AND ".join(f"{k} = %({k})s" for k in keys)
        self._changed(self._write(f"UPDATE {table} SET {sets} WHERE {where}", row), field, what)

    def add_gateway(self, gateway: Gateway) -> None:
        self._insert("gateways", gateway_to_row(gateway))

    def update_gateway(self, gateway: Gateway) -> None:
        self._update("gateways", gateway_to_row(gateway), ("name",), "gateway", gateway.name)

    def remove_gateway(self, name: str) -> None:
        cur = self._write("DELETE FROM gateways WHERE name = %s", (name,))
        self._changed(cur, "gateway", name)
        for table in ("gateway_reports", "peer_reports"):
            self._exec(f"DELETE FROM {table} WHERE gateway = %s", (name,))

    def add_interface(self, iface: Interface) -> None:
        self._insert("interfaces", interface_to_row(iface))

    def update_interface(self, iface: Interface) -> None:
        self._update("interfaces", interface_to_row(iface), ("name",), "interface", iface.name)

    def remove_interface(self, name: str) -> None:
        cur = self._write("DELETE FROM interfaces WHERE name = %s", (name,))
        self._changed(cur, "interface", name)

    def add_tenant(self, tenant: Tenant) -> None:
        self._insert("tenants", tenant_to_row(tenant))

    def update_tenant(self, tenant: Tenant) -> None:
        self._update("tenants", tenant_to_row(tenant), ("name",), "tenant", tenant.name)

    def remove_tenant(self, name: str) -> None:
        cur = self._write("DELETE FROM tenants WHERE name = %s", (name,))
        self._changed(cur, "tenant", name)

    def add_peer(self, peer: Peer) -> None:
        self._insert("peers", peer_to_row(peer))

    def update_peer(self, peer: Peer) -> None:
        self._update("peers", peer_to_row(peer), ("tenant", "name"), "peer", peer.ref)

    def remove_peer(self, tenant: str, name: str) -> None:
        cur = self._write("DELETE FROM peers WHERE tenant = %s AND name = %s", (tenant, name))
        self._changed(cur, "peer", f"{tenant}/{name}")

    # record_event is the base class's: it chains through these two.
    def audit_head(self) -> audit.Head | None:
        if not self._head_read:  # one read per transaction: under the lock it alone writes
            self._head, self._head_read = read_head(self._conn), True
        return self._head

    def append_audit(self, rec: audit.Record) -> None:
        self.dirty = True
        insert_audit(self._conn, rec)
        self._head, self._head_read, self._head_moved = audit.Head(rec.seq, rec.hash), True, True

    def _write_head(self) -> None:
        """Before COMMIT: the kept head, once per transaction (not once per record)."""
        if self._head_moved and self._head is not None:
            write_head(self._conn, self._head)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._exec("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return default if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def interface(self, name: str) -> Interface | None:
        row = self._exec("SELECT * FROM interfaces WHERE name = %s", (name,)).fetchone()
        return None if row is None else interface_from_row(self._store._open("interfaces", row))

    def tenant(self, name: str) -> Tenant | None:
        row = self._exec("SELECT * FROM tenants WHERE name = %s", (name,)).fetchone()
        return None if row is None else tenant_from_row(row)

    def peer(self, tenant: str, name: str) -> Peer | None:
        row = self._exec(
            "SELECT * FROM peers WHERE tenant = %s AND name = %s", (tenant, name)
        ).fetchone()
        return None if row is None else peer_from_row(self._store._open("peers", row))

    def key_user(self, public_key: str) -> tuple[str, str] | None:
        row = self._exec(
            "SELECT tenant, name FROM peers WHERE public_key = %(k)s OR "
            "retiring_public_key = %(k)s ORDER BY tenant, name LIMIT 1",
            {"k": public_key},
        ).fetchone()
        if row is not None:
            return ("peer", f"{row['tenant']}/{row['name']}")
        found = self._exec(
            "SELECT name FROM interfaces WHERE public_key = %s", (public_key,)
        ).fetchone()
        return None if found is None else ("interface", found["name"])

    def tenant_addresses(self, tenant: str) -> set[IPAddress]:
        rows = self._exec(
            "SELECT addresses, retiring_addresses FROM peers WHERE tenant = %s", (tenant,)
        ).fetchall()
        return {
            a.ip
            for r in rows
            for text in (r["addresses"], r["retiring_addresses"])
            if text
            for a in addresses_from_text(text)
        }


class PgStore(Store):
    """The store in a PostgreSQL database; `state_dir` stays local (the agent's socket, the
    outbox). The lock is a session advisory lock, held across the whole command."""

    def __init__(
        self, url: str, state_dir: Path, create: bool = False, cipher: Cipher | None = None
    ):
        self.url, self.state_dir, self.cipher = url, Path(state_dir), cipher
        self.label = describe(url)
        self._tx: PgTx | None = None
        self._lock_depth = 0
        self._gateway_locks = 0
        self._cache: tuple[int, State] | None = None
        self._peer_memo: dict = {}
        self._conn = connect(url)
        try:
            with pg_errors(self.label):
                self._open_schema(create)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def attach(cls, conn: Conn, url: str, state_dir: Path, cipher: Cipher) -> PgStore:
        """A store on `conn` inside the caller's open transaction, with no checks (the copy
        of `store migrate` fills an empty database through it)."""
        store = cls.__new__(cls)
        store.url, store.state_dir, store.cipher = url, Path(state_dir), cipher
        store.label, store._conn, store._lock_depth, store._cache = describe(url), conn, 1, None
        store._gateway_locks, store._peer_memo = 0, {}
        store._tx = PgTx(store)
        return store

    def _open_schema(self, create: bool) -> None:
        if self.cipher is None:
            raise ValidationError(
                sealed.KEY_FILE_ENV,
                f"the PostgreSQL store keeps secrets encrypted: set {sealed.KEY_FILE_ENV} "
                "to its key file (`wggw init` makes one where it names a missing file)",
            )
        if self.schema_version() != SCHEMA_VERSION:
            if not create and self._missing():
                raise StoreMissingError(
                    f"no wggw store in {self.label}; run `wggw --db URL init` first"
                )
            with self._conn.transaction():
                migrate(self._conn, self.label)
        stored = self.get_meta(sealed.META_KEY_ID)
        if stored is None and create:
            with self.transaction() as tx:
                state = tx.load()
                if state.interfaces or state.peers:  # written by hand, not by wggw
                    raise StoreError(
                        f"{self.label} holds secrets that are not sealed; "
                        "copy a store in with `wggw store migrate` instead"
                    )
                tx.set_meta(sealed.META_KEY_ID, self.cipher.key_id)
            stored = self.cipher.key_id
        sealed.check(stored, self.cipher, self.label)

    def _ensure(self) -> None:
        """A new session after the old one was lost (server restarted, network cut), between
        transactions only: a resident process (the agent) recovers when the server returns.
        Held locks and transactions died with the old session, so none may be open."""
        idle = self._tx is None and not self._lock_depth and not self._gateway_locks
        if (self._conn.closed or self._conn.broken) and idle:
            self._conn = connect(self.url)
            self._cache = None

    def _missing(self) -> bool:
        row = self._conn.execute("SELECT to_regclass('schema_version') AS t").fetchone()
        return row is None or row["t"] is None

    # --- lock and transactions ----------------------------------------------
    @contextlib.contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        if self._lock_depth:  # reentrant within this store
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self._ensure()
        self._acquire(storelock.default_timeout() if timeout is None else timeout)
        self._lock_depth = 1
        try:
            yield
        finally:
            self._lock_depth = 0
            with contextlib.suppress(psycopg.Error):  # a lost session has released it
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def _acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with pg_errors(self.label):
            while True:
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s) AS ok", (LOCK_KEY,)
                ).fetchone()
                if row is not None and row["ok"]:
                    return
                if time.monotonic() >= deadline:
                    raise LockBusyError(
                        f"the store lock of {self.label} is held by another wggw process "
                        f"{self._holder()}; gave up after {timeout:g}s (WGGW_LOCK_TIMEOUT)"
                    )
                time.sleep(0.02 + random.random() * 0.05)  # jitter: waiters not in lockstep

    def _holder(self) -> str:
        row = self._conn.execute(
            "SELECT a.client_addr::text AS addr, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.objid = %s AND l.granted LIMIT 1",
            (LOCK_KEY,),
        ).fetchone()
        if row is None:
            return ""
        return f"(server backend {row['pid']}, client {row['addr'] or 'local socket'})"

    @contextlib.contextmanager
    def gateway_locked(self, gateway: str, timeout: float | None = None) -> Iterator[None]:
        """One gateway's lock (a session advisory lock on a hash of its name), not the
        command lock: an agent converging its gateway keeps operators on other hosts and the
        other gateways' agents free. Not reentrant; the command lock may be taken inside."""
        key = (GATEWAY_LOCK_CLASS, gateway_lock_id(gateway))
        self._ensure()
        deadline = time.monotonic() + (storelock.default_timeout() if timeout is None else timeout)
        with pg_errors(self.label):
            while not self._conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s) AS ok", key
            ).fetchone()["ok"]:  # type: ignore[index]
                if time.monotonic() >= deadline:
                    raise LockBusyError(
                        f"gateway {gateway}'s lock in {self.label} is held by another wggw "
                        "process (is a second agent running for it?)"
                    )
                time.sleep(0.02 + random.random() * 0.05)
        self._gateway_locks += 1
        try:
            yield
        finally:
            self._gateway_locks -= 1
            with contextlib.suppress(psycopg.Error):  # a lost session has released it
                self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self._tx is not None:  # join: the outer transaction commits
            yield self._tx
            return
        with self.locked(), pg_errors(self.label):
            self._conn.execute("BEGIN")
            self._tx = tx = PgTx(self)
            try:
                yield tx
                tx._write_head()
                if tx.dirty:
                    bump_generation(self._conn)
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._tx = None

    # --- reports ----------------------------------------------------------------
    def write_report(self, report: GatewayReport, peers: Sequence[PeerReport] = ()) -> None:
        """Its own short transaction (or the open one): no lock, no generation bump."""
        self._ensure()
        with pg_errors(self.label), self._conn.transaction():
            self._conn.execute(reports.upsert_gateway_sql("%s"), reports.gateway_values(report))
            if peers:
                with self._conn.cursor() as cur:
                    cur.executemany(
                        reports.upsert_peer_sql("%s"), [reports.peer_values(p) for p in peers]
                    )

    def reports(self) -> list[GatewayReport]:
        self._ensure()
        with pg_errors(self.label):
            rows = self._conn.execute("SELECT * FROM gateway_reports ORDER BY gateway")
            return [reports.gateway_from_row(r) for r in rows.fetchall()]

    def peer_reports(self, gateway: str | None = None) -> list[PeerReport]:
        sql = "SELECT * FROM peer_reports"
        args: tuple[str, ...] = ()
        if gateway is not None:
            sql, args = sql + " WHERE gateway = %s", (gateway,)
        self._ensure()
        with pg_errors(self.label):
            rows = self._conn.execute(sql + " ORDER BY gateway, public_key", args)
            return [reports.peer_from_row(r) for r in rows.fetchall()]

    # --- reads ----------------------------------------------------------------
    @contextlib.contextmanager
    def _read_tx(self) -> Iterator[None]:
        """One snapshot across the tables (REPEATABLE READ), or the open write transaction."""
        if self._tx is not None:
            yield
            return
        self._ensure()
        with pg_errors(self.label):
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield
            finally:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("COMMIT")

    def load(self) -> State:
        if self._tx is not None:
            return self._read_state()
        with self._read_tx():
            # Decoding 10,000 peers costs ~0.3 s: reuse the last snapshot while the
            # generation (bumped by every commit) has not moved.
            gen = self._generation()
            if self._cache is None or self._cache[0] != gen:
                self._cache = (gen, self._read_state())
            return replace(self._cache[1], meta=dict(self._cache[1].meta))

    def _read_state(self) -> State:
        # Peers whose rows are unchanged since the last load are not decoded again (an
        # agent reloads the whole store on every commit it is told of: 1,000 peers ~0.1 s).
        return read_state(
            lambda sql: self._conn.execute(sql).fetchall(), self._open, self._peer_memo
        )

    def events(self, subject: str | None = None) -> list[dict]:
        self._ensure()
        with pg_errors(self.label):
            return read_events(self._conn, subject)

    def audit_rows(self) -> tuple[list[dict], audit.Head | None]:
        with self._read_tx(), pg_errors(self.label):  # one snapshot: rows and head agree
            return audit_rows(self._conn)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        self._ensure()
        with pg_errors(self.label):
            row = self._conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return default if row is None else row["value"]

    def generation(self) -> int:
        self._ensure()
        with pg_errors(self.label):
            return self._generation()

    def _generation(self) -> int:
        row = self._conn.execute("SELECT n FROM wggw_generation WHERE id = 1").fetchone()
        return 0 if row is None else int(row["n"])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with self._read_tx():
            yield PgTx(self)

    def schema_version(self) -> int:
        with pg_errors(self.label):
            if self._missing():
                return 0
            row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        return 0 if row is None else int(row["version"])

    def close(self) -> None:
        self._conn.close()

    # --- secrets at rest --------------------------------------------------------
    def _seal(self, table: str, row: dict) -> dict:
        return row if self.cipher is None else self.cipher.seal_row(table, row)

    def _open(self, table: str, row: Any) -> Any:
        return row if self.cipher is None else self.cipher.open_row(table, row)
