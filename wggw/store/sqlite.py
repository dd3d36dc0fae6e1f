"""Persistence of the desired `State`: the small `Store` interface and its SQLite implementation.

One command = one transaction under one exclusive lock, so an operator and a cron
job cannot interleave and a failure leaves the previous state intact. The state
directory is 0700 and every file in it 0600, created so. The PostgreSQL store of a
fleet of gateways (store/postgres.py) implements `Store`/`Tx` with the same migrations.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from wggw import fsutil
from wggw.core import audit
from wggw.core.errors import EXIT_USAGE, NotFoundError, StoreError, ValidationError
from wggw.core.fleet import GatewayReport, PeerReport
from wggw.core.model import Gateway, Interface, IPAddress, Peer, State, Tenant
from wggw.store import actor, reports, sealed
from wggw.store import lock as storelock
from wggw.store.codec import (
    EVENT_COLUMNS,
    addresses_from_text,
    event_values,
    gateway_to_row,
    interface_from_row,
    interface_to_row,
    peer_from_row,
    peer_to_row,
    read_state,
    tenant_from_row,
    tenant_to_row,
)
from wggw.store.sealed import Cipher

DB_NAME = "wggw.db"
LOCK_NAME = "lock"

# Forward migrations: MIGRATIONS[i] brings schema version i to i + 1. Never edit a
# released entry; append a new one. A step may hold a function of the connection too (data).
MIGRATIONS: list[tuple[str | Callable[[sqlite3.Connection], None], ...]] = [
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE interfaces (
            name TEXT PRIMARY KEY, listen_port INTEGER NOT NULL UNIQUE, endpoint TEXT NOT NULL,
            private_key TEXT NOT NULL, public_key TEXT NOT NULL UNIQUE, mtu INTEGER)""",
        """CREATE TABLE tenants (
            name TEXT PRIMARY KEY, interface TEXT NOT NULL REFERENCES interfaces(name),
            pools TEXT NOT NULL, egress TEXT NOT NULL, table_id INTEGER NOT NULL UNIQUE,
            uplink TEXT, via TEXT NOT NULL, rotate_after INTEGER)""",
        """CREATE TABLE peers (
            tenant TEXT NOT NULL REFERENCES tenants(name), name TEXT NOT NULL,
            public_key TEXT NOT NULL UNIQUE, addresses TEXT NOT NULL, key_created_at REAL NOT NULL,
            private_key TEXT, psk TEXT, keepalive INTEGER, dns TEXT NOT NULL, expires_at REAL,
            created_at REAL NOT NULL, retiring_public_key TEXT, retiring_psk TEXT,
            retiring_addresses TEXT, retiring_at REAL, PRIMARY KEY (tenant, name))""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
            subject TEXT NOT NULL, details TEXT NOT NULL)""",
        "CREATE INDEX events_subject ON events(subject)",
    ),
    # `peer add` asks "is this key used?" without loading every peer (public_key is UNIQUE
    # already)
    ("CREATE INDEX peers_retiring_public_key ON peers(retiring_public_key)",),
    # The events become one hash chain (core/audit.py): who, which command, the fingerprints
    # of the keys touched, the previous record's hash and its own; the head is kept apart so
    # a cut-off tail shows. Records written before are chained as they are (no who).
    (
        "ALTER TABLE events ADD COLUMN uid INTEGER",
        "ALTER TABLE events ADD COLUMN user TEXT",
        "ALTER TABLE events ADD COLUMN command TEXT",
        "ALTER TABLE events ADD COLUMN keys TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE events ADD COLUMN prev TEXT",
        "ALTER TABLE events ADD COLUMN hash TEXT",
        """CREATE TABLE audit_head (
            one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)""",
        lambda db: _chain_old_events(db),
    ),
    # A fleet (issue 13): gateways, where interfaces run (by priority: issue 14's standby),
    # a tenant pinned to one (`tenant move`, with the target while it moves), and what each
    # gateway's agent reports back. Reports are not desired state: written without the lock,
    # no generation bump, no audit record.
    (
        """CREATE TABLE gateways (
            name TEXT PRIMARY KEY, uplink TEXT, via TEXT NOT NULL, created_at REAL NOT NULL)""",
        "ALTER TABLE interfaces ADD COLUMN gateways TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE tenants ADD COLUMN gateway TEXT",
        "ALTER TABLE tenants ADD COLUMN moving_to TEXT",
        """CREATE TABLE gateway_reports (
            gateway TEXT PRIMARY KEY, generation INTEGER NOT NULL, healthy INTEGER NOT NULL,
            error TEXT, version TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
            started_at REAL NOT NULL, reported_at REAL NOT NULL, converged_at REAL,
            details TEXT NOT NULL DEFAULT '{}')""",
        """CREATE TABLE peer_reports (
            gateway TEXT NOT NULL, public_key TEXT NOT NULL, endpoint TEXT,
            latest_handshake REAL, rx_bytes INTEGER NOT NULL, tx_bytes INTEGER NOT NULL,
            reported_at REAL NOT NULL, PRIMARY KEY (gateway, public_key))""",
        "CREATE INDEX peer_reports_public_key ON peer_reports(public_key)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreMissingError(StoreError):
    """There is no store yet: the operator has to run `wggw init`."""

    exit_code = EXIT_USAGE


class Tx(abc.ABC):
    """The writes (and reads) of one transaction. Removals of unknown objects raise
    NotFoundError."""

    _who: tuple[int, str | None, str | None] | None = None  # uid, user, command

    @abc.abstractmethod
    def load(self) -> State: ...
    @abc.abstractmethod
    def add_gateway(self, gateway: Gateway) -> None: ...
    @abc.abstractmethod
    def update_gateway(self, gateway: Gateway) -> None: ...
    @abc.abstractmethod
    def remove_gateway(self, name: str) -> None: ...
    @abc.abstractmethod
    def add_interface(self, iface: Interface) -> None: ...
    @abc.abstractmethod
    def update_interface(self, iface: Interface) -> None: ...
    @abc.abstractmethod
    def remove_interface(self, name: str) -> None: ...
    @abc.abstractmethod
    def add_tenant(self, tenant: Tenant) -> None: ...
    @abc.abstractmethod
    def update_tenant(self, tenant: Tenant) -> None: ...
    @abc.abstractmethod
    def remove_tenant(self, name: str) -> None: ...
    @abc.abstractmethod
    def add_peer(self, peer: Peer) -> None: ...
    @abc.abstractmethod
    def update_peer(self, peer: Peer) -> None: ...
    @abc.abstractmethod
    def remove_peer(self, tenant: str, name: str) -> None: ...
    @abc.abstractmethod
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    def record_event(self, kind: str, subject: str, details: dict) -> None:
        """Append an audit record (core/audit.py) to the chain in this transaction: no change
        commits without its record. `details` are plain data; a Secret in them is refused."""
        if self._who is None:  # one transaction, one actor: asked once (bulk adds write 10,000)
            self._who = (*actor.who(), actor.command())
        uid, user, command = self._who
        rec = audit.chain(
            self.audit_head(),
            at=round(time.time(), 6),
            kind=kind,
            subject=subject,
            uid=uid,
            user=user,
            command=command,
            details=details,
        )
        self.append_audit(rec)

    @abc.abstractmethod
    def audit_head(self) -> audit.Head | None:
        """The newest record's (seq, hash) as kept apart from the rows (None: no record)."""

    @abc.abstractmethod
    def append_audit(self, rec: audit.Record) -> None:
        """Persist `rec` (its seq as the row's order) and make it the kept head."""

    def generation(self) -> int:
        """A number that grows with every committed change (the agent polls it): the newest
        audit record's seq. The agent's own repair records move it too; it takes those as
        seen itself (agent/loop.py), so a store need not tell them apart."""
        raise NotImplementedError

    def snapshot(self) -> contextlib.AbstractContextManager[Tx]:
        """Point reads in one read transaction WITHOUT the lock: for a process acting for the
        lock holder (the agent applying a CLI's change while that CLI holds the lock)."""
        raise NotImplementedError

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    # Point reads, so a one-peer command need not load (and decode) every peer.
    @abc.abstractmethod
    def interface(self, name: str) -> Interface | None: ...
    @abc.abstractmethod
    def tenant(self, name: str) -> Tenant | None: ...
    @abc.abstractmethod
    def peer(self, tenant: str, name: str) -> Peer | None: ...
    @abc.abstractmethod
    def key_user(self, public_key: str) -> tuple[str, str] | None:
        """Who holds `public_key`: ("peer", "T/P") as current or retiring key (the first by
        tenant, name), else ("interface", NAME), else None."""

    @abc.abstractmethod
    def tenant_addresses(self, tenant: str) -> set[IPAddress]:
        """Addresses held by the tenant's peers and their retiring keys (pools never overlap,
        so these are all the used addresses inside the tenant's pools)."""


class Store(abc.ABC):
    """What the rest of wggw needs from persistence."""

    state_dir: Path
    cipher: Cipher | None = None  # seals secrets at rest (store/sealed.py); None: plain

    @abc.abstractmethod
    def load(self) -> State:
        """A consistent snapshot of all interfaces, tenants and peers."""

    @abc.abstractmethod
    def locked(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Exclusive across processes for a whole command; reentrant within one process."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Tx]:
        """One atomic transaction (takes the lock if not held; joins an open one)."""

    @abc.abstractmethod
    def events(self, subject: str | None = None) -> list[dict]:
        """Audit records, oldest first: {at, kind, subject, details}."""

    @abc.abstractmethod
    def audit_rows(self) -> tuple[list[dict], audit.Head | None]:
        """Every audit row in seq order as stored ({seq, at, kind, subject, uid, user,
        command, keys, details, prev, hash}), and the kept head, read in one snapshot."""

    @abc.abstractmethod
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    # An agent's reports (core/fleet.py): upserted without the lock, no generation bump.
    @abc.abstractmethod
    def write_report(self, report: GatewayReport, peers: Sequence[PeerReport] = ()) -> None: ...
    @abc.abstractmethod
    def reports(self) -> list[GatewayReport]: ...
    @abc.abstractmethod
    def peer_reports(self, gateway: str | None = None) -> list[PeerReport]:
        """Every peer report, or one gateway's; ordered by gateway, public key."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(
    state_dir: Path, create: bool = False, cipher: Cipher | None = None, check_key: bool = True
) -> Store:
    """Open the store in `state_dir`; with `create`, make the directory and database first.
    With `cipher`, secrets are sealed at rest (store/sealed.py); `check_key=False` leaves
    matching it to the store's key to the caller (`store rekey`, `store migrate`)."""
    return SqliteStore(Path(state_dir), create=create, cipher=cipher, check_key=check_key)


def store_exists(state_dir: Path) -> bool:
    return (Path(state_dir) / DB_NAME).is_file()


class SqliteTx(Tx):
    def __init__(self, store: SqliteStore):
        self._store = store
        self._db = store._db
        self._head: audit.Head | None | object = _UNREAD
        self._head_moved = False

    def load(self) -> State:
        return self._store._read_state()

    def _changed(self, cursor: sqlite3.Cursor, field: str, what: str) -> None:
        if cursor.rowcount == 0:
            raise NotFoundError(field, f"no {field} named {what!r}")

    def _insert(self, table: str, row: dict) -> None:
        cols = ", ".join(row)
        row = self._store._seal(table, row)
        marks = ", ".join(f":{c}" for c in row)
        self._db.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", row)

    def _update(self, table: str, row: dict, keys: tuple[str, ...], field: str, what: str) -> None:
        row = self._store._seal(table, row)
        sets = ", ".join(f"{c} = :{c}" for c in row if c not in keys)
        where = " AND ".join(f"{k} = :{k}" for k in keys)
        self._changed(
            self._db.execute(f"UPDATE {table} SET {sets} WHERE {where}", row), field, what
        )

    def add_gateway(self, gateway: Gateway) -> None:
        self._insert("gateways", gateway_to_row(gateway))

    def update_gateway(self, gateway: Gateway) -> None:
        self._update("gateways", gateway_to_row(gateway), ("name",), "gateway", gateway.name)

    def remove_gateway(self, name: str) -> None:
        cur = self._db.execute("DELETE FROM gateways WHERE name = ?", (name,))
        self._changed(cur, "gateway", name)
        for table in ("gateway_reports", "peer_reports"):
            self._db.execute(f"DELETE FROM {table} WHERE gateway = ?", (name,))

    def add_interface(self, iface: Interface) -> None:
        self._insert("interfaces", interface_to_row(iface))

    def update_interface(self, iface: Interface) -> None:
        self._update("interfaces", interface_to_row(iface), ("name",), "interface", iface.name)

    def remove_interface(self, name: str) -> None:
        cur = self._db.execute("DELETE FROM interfaces WHERE name = ?", (name,))
        self._changed(cur, "interface", name)

    def add_tenant(self, tenant: Tenant) -> None:
        self._insert("tenants", tenant_to_row(tenant))

    def update_tenant(self, tenant: Tenant) -> None:
        self._update("tenants", tenant_to_row(tenant), ("name",), "tenant", tenant.name)

    def remove_tenant(self, name: str) -> None:
        self._changed(
            self._db.execute("DELETE FROM tenants WHERE name = ?", (name,)), "tenant", name
        )

    def add_peer(self, peer: Peer) -> None:
        self._insert("peers", peer_to_row(peer))

    def update_peer(self, peer: Peer) -> None:
        self._update("peers", peer_to_row(peer), ("tenant", "name"), "peer", peer.ref)

    def remove_peer(self, tenant: str, name: str) -> None:
        cur = self._db.execute("DELETE FROM peers WHERE tenant = ? AND name = ?", (tenant, name))
        self._changed(cur, "peer", f"{tenant}/{name}")

    def audit_head(self) -> audit.Head | None:
        if self._head is _UNREAD:  # one read per transaction: it alone writes the chain
            row = self._one("SELECT seq, hash FROM audit_head")
            # No head but records: someone removed it (`audit verify` says so until the next
            # record). Go on from the last row rather than refuse every change from now on;
            # whoever may delete the head may as well rewrite it.
            row = row or self._one("SELECT id AS seq, hash FROM events ORDER BY id DESC LIMIT 1")
            self._head = None if row is None else audit.Head(row["seq"], row["hash"])
        return self._head  # type: ignore[return-value]

    def append_audit(self, rec: audit.Record) -> None:
        _insert_event(self._db, rec)
        self._head = audit.Head(rec.seq, rec.hash)
        self._head_moved = True

    def _write_head(self) -> None:
        """Before COMMIT: the kept head, once per transaction (not once per record)."""
        if self._head_moved and isinstance(self._head, audit.Head):
            self._db.execute(
                "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?, ?) "
                "ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                (self._head.seq, self._head.hash),
            )

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        return self._store.get_meta(key, default)

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self._db.execute(sql, args).fetchone()

    def interface(self, name: str) -> Interface | None:
        row = self._one("SELECT * FROM interfaces WHERE name = ?", name)
        return None if row is None else interface_from_row(self._store._open("interfaces", row))

    def tenant(self, name: str) -> Tenant | None:
        row = self._one("SELECT * FROM tenants WHERE name = ?", name)
        return None if row is None else tenant_from_row(row)

    def peer(self, tenant: str, name: str) -> Peer | None:
        row = self._one("SELECT * FROM peers WHERE tenant = ? AND name = ?", tenant, name)
        return None if row is None else peer_from_row(self._store._open("peers", row))

    def key_user(self, public_key: str) -> tuple[str, str] | None:
        row = self._one(
            "SELECT tenant, name FROM peers WHERE public_key = ?1 OR retiring_public_key = ?1 "
            "ORDER BY tenant, name LIMIT 1",
            public_key,
        )
        if row is not None:
            return ("peer", f"{row['tenant']}/{row['name']}")
        row = self._one("SELECT name FROM interfaces WHERE public_key = ?", public_key)
        return None if row is None else ("interface", row["name"])

    def tenant_addresses(self, tenant: str) -> set[IPAddress]:
        rows = self._db.execute(
            "SELECT addresses, retiring_addresses FROM peers WHERE tenant = ?", (tenant,)
        )
        return {a.ip for r in rows for text in r if text for a in addresses_from_text(text)}


class SqliteStore(Store):
    """SQLite in `<state_dir>/wggw.db`; the lock is flock on `<state_dir>/lock`."""

    def __init__(
        self,
        state_dir: Path,
        create: bool = False,
        cipher: Cipher | None = None,
        check_key: bool = True,
    ):
        self.state_dir = state_dir
        self.cipher = cipher
        self.path = state_dir / DB_NAME
        self._tx: SqliteTx | None = None
        self._cache: tuple[tuple[int, int], State] | None = None
        if create:
            _create_files(state_dir, self.path)
        elif state_dir.exists() and not os.access(state_dir, os.R_OK | os.X_OK):
            raise ValidationError("state-dir", f"{state_dir}: permission denied")
        elif not self.path.is_file():
            raise StoreMissingError(f"no wggw store in {state_dir}; run `wggw init` first")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open store {self.path}: {e}") from None
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        self._bind_cipher(create, check_key)

    # --- lock and transactions ----------------------------------------------
    def locked(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        return storelock.flock(self.state_dir / LOCK_NAME, timeout)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self._tx is not None:  # join: the outer transaction commits
            yield self._tx
            return
        with self.locked(), _sqlite_errors(self.path):
            self._db.execute("BEGIN IMMEDIATE")
            self._tx = SqliteTx(self)
            try:
                yield self._tx
                self._tx._write_head()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._tx = None

    # --- reports ----------------------------------------------------------------
    def write_report(self, report: GatewayReport, peers: Sequence[PeerReport] = ()) -> None:
        with _sqlite_errors(self.path):
            own = self._tx is None
            if own:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(reports.upsert_gateway_sql("?"), reports.gateway_values(report))
                self._db.executemany(
                    reports.upsert_peer_sql("?"), [reports.peer_values(p) for p in peers]
                )
            except BaseException:
                if own:
                    self._db.execute("ROLLBACK")
                raise
            if own:
                self._db.execute("COMMIT")

    def reports(self) -> list[GatewayReport]:
        with _sqlite_errors(self.path):
            rows = self._db.execute("SELECT * FROM gateway_reports ORDER BY gateway")
            return [reports.gateway_from_row(r) for r in rows]

    def peer_reports(self, gateway: str | None = None) -> list[PeerReport]:
        sql = "SELECT * FROM peer_reports"
        args: tuple = ()
        if gateway is not None:
            sql, args = sql + " WHERE gateway = ?", (gateway,)
        with _sqlite_errors(self.path):
            rows = self._db.execute(sql + " ORDER BY gateway, public_key", args)
            return [reports.peer_from_row(r) for r in rows]

    # --- reads ----------------------------------------------------------------
    def load(self) -> State:
        if self._tx is not None:
            return self._read_state()
        with _sqlite_errors(self.path):
            self._db.execute("BEGIN")  # one snapshot across the three tables
            try:
                # One command often loads several times (housekeeping, then converge); decoding
                # 10,000 peers costs ~0.3 s, so reuse the last snapshot while nobody wrote:
                # data_version moves on commits of other connections, total_changes on ours.
                version = (
                    self._db.execute("PRAGMA data_version").fetchone()[0],
                    self._db.total_changes,
                )
                if self._cache is None or self._cache[0] != version:
                    self._cache = (version, self._read_state())
                return replace(self._cache[1], meta=dict(self._cache[1].meta))
            finally:
                self._db.execute("COMMIT")

    def _read_state(self) -> State:
        return read_state(self._db.execute, self._open)

    def events(self, subject: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM events ORDER BY id", tuple[str, ...]()
        if subject is not None:
            sql, args = "SELECT * FROM events WHERE subject = ? ORDER BY id", (subject,)
        with _sqlite_errors(self.path):
            rows = self._db.execute(sql, args).fetchall()
        return [
            {
                "at": r["at"],
                "kind": r["kind"],
                "subject": r["subject"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]

    def audit_rows(self) -> tuple[list[dict], audit.Head | None]:
        with _sqlite_errors(self.path), self.snapshot():
            rows = self._db.execute(f"SELECT {_AUDIT_COLUMNS} FROM events ORDER BY id")
            kept = self._db.execute("SELECT seq, hash FROM audit_head").fetchone()
            head = None if kept is None else audit.Head(kept["seq"], kept["hash"])
            return [dict(r) for r in rows], head

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with _sqlite_errors(self.path):
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row["value"]

    def generation(self) -> int:
        # Every mutating operation records an audit event in its transaction: the newest
        # event's id is a store generation (an O(1) rowid lookup, cheap enough to poll).
        with _sqlite_errors(self.path):
            return self._db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with _sqlite_errors(self.path):
            self._db.execute("BEGIN")
            try:
                yield SqliteTx(self)
            finally:
                self._db.execute("COMMIT")

    # --- secrets at rest (store/sealed.py) -----------------------------------------
    def _seal(self, table: str, row: dict) -> dict:
        return row if self.cipher is None else self.cipher.seal_row(table, row)

    def _open(self, table: str, row: Any) -> Any:
        return row if self.cipher is None else self.cipher.open_row(table, row)

    def _bind_cipher(self, create: bool, check_key: bool) -> None:
        """A new store takes the key of WGGW_KEY_FILE; an existing one must match its own."""
        with _sqlite_errors(self.path):
            stored = self.get_meta(sealed.META_KEY_ID)
            if create and self.cipher is not None and stored is None:
                empty = self._db.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM interfaces) AND NOT EXISTS "
                    "(SELECT 1 FROM peers)"
                ).fetchone()[0]
                if empty:
                    with self.transaction() as tx:
                        tx.set_meta(sealed.META_KEY_ID, self.cipher.key_id)
                    stored = self.cipher.key_id
        if check_key:
            sealed.check(stored, self.cipher, str(self.path))

    def schema_version(self) -> int:
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return 0 if row is None else row[0]

    def close(self) -> None:
        self._db.close()

    # --- schema -----------------------------------------------------------------
    def _migrate(self) -> None:
        with _sqlite_errors(self.path):
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            if self.schema_version() == SCHEMA_VERSION:
                return
            with self.transaction():
                version = self.schema_version()  # again: another process may have migrated
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self.path} has schema version {version}, newer than this "
                        f"wggw understands ({SCHEMA_VERSION}); upgrade wggw"
                    )
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        if callable(statement):
                            statement(self._db)
                        else:
                            self._db.execute(statement)
                self._db.execute("DELETE FROM schema_version")
                self._db.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )


_UNREAD = object()
_AUDIT_COLUMNS = "id AS seq, at, kind, subject, uid, user, command, keys, details, prev, hash"


_PLACES = ", ".join("?" * len(EVENT_COLUMNS))
_INSERT_EVENT = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({_PLACES})"


def _insert_event(db: sqlite3.Connection, rec: audit.Record) -> None:
    db.execute(_INSERT_EVENT, event_values(rec))


def _chain_old_events(db: Any) -> None:
    """Migration 3: chain the records written before there was a chain, in their order. `db`
    is a sqlite3 or a psycopg connection (the PostgreSQL store runs the same step): both
    execute(sql, args) and give rows by column name; only the placeholder differs."""
    mark = "?" if isinstance(db, sqlite3.Connection) else "%s"
    head: audit.Head | None = None
    rows = db.execute("SELECT id, at, kind, subject, details FROM events ORDER BY id").fetchall()
    for r in rows:
        rec = audit.chain(
            head,
            seq=r["id"],
            at=r["at"],
            kind=r["kind"],
            subject=r["subject"],
            uid=None,
            user=None,
            command=None,
            details=json.loads(r["details"]),
        )
        db.execute(
            f"UPDATE events SET keys = {mark}, prev = {mark}, hash = {mark} WHERE id = {mark}",
            (json.dumps(list(rec.keys)), rec.prev, rec.hash, rec.seq),
        )
        head = audit.Head(rec.seq, rec.hash)
    if head is not None:
        db.execute(
            f"INSERT INTO audit_head (one, seq, hash) VALUES (1, {mark}, {mark})",
            (head.seq, head.hash),
        )


@contextlib.contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as e:
        raise StoreError(f"store {path}: {e}") from None


def _create_files(state_dir: Path, db_path: Path) -> None:
    """The directory 0700 and the database file 0600 before SQLite touches them; SQLite
    gives its -journal/-wal files the database file's mode."""
    try:
        made = fsutil.make_private_dir(state_dir)
    except OSError as e:
        raise ValidationError("state-dir", f"cannot create {state_dir}: {e.strerror}") from None
    if not made:
        if not state_dir.is_dir():
            raise ValidationError("state-dir", f"{state_dir} exists and is not a directory")
        if not fsutil.is_private_dir(state_dir):
            mode = oct(state_dir.stat().st_mode & 0o7777)
            raise ValidationError(
                "state-dir",
                f"{state_dir} is accessible by other users (mode {mode}); "
                "use a directory only its owner can enter (mode 0700)",
            )
    with fsutil.private_umask():
        try:
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            pass
