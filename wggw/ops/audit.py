"""The audit operations: list and verify the store's hash chain (core/audit.py), and record
what changes the host but not the store (`apply`, `down`, the agent's repairs)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from wggw.core import audit
from wggw.core.errors import StoreError, WggwError

if TYPE_CHECKING:
    from wggw.store.sqlite import Store

# At most this many objects are named in one repair record (a round may re-add 40 rules).
REPAIR_OBJECTS = 10


def records(
    store: Store, since: str | None = None, tenant: str | None = None, now: float = 0.0
) -> list[audit.Record]:
    """The records, oldest first, filtered; `since` as `--since` takes it (needs `now`)."""
    after = audit.parse_since(since, now) if since is not None else None
    rows, _head = store.audit_rows()
    out = []
    for row in rows:
        try:
            out.append(audit.record_of(row))
        except (ValueError, KeyError, TypeError):
            raise StoreError(
                f"audit record {row.get('seq')} cannot be read; run `wggw audit verify`"
            ) from None
    return audit.select(out, after, tenant)


def verify(
    store: Store, expect: str | None = None
) -> tuple[audit.Broken | None, int, audit.Head | None]:
    """(the first bad record or None, how many records, the kept head). `expect`: a head
    kept elsewhere, `SEQ:HASH`, that the chain must still hold."""
    anchor = audit.parse_head(expect) if expect is not None else None
    rows, head = store.audit_rows()
    return audit.verify(rows, head, anchor), len(rows), head


def record(store: Store, kind: str, subject: str, details: dict) -> None:
    """One record in a transaction of its own, for a change the store does not hold."""
    with store.transaction() as tx:
        tx.record_event(kind, subject, details)


def record_in(
    state_dir: Path, kind: str, subject: str, details: dict, db: str | None = None
) -> str | None:
    """`record` into the store this command works on (PostgreSQL at `db` or WGGW_DB, else
    SQLite in `state_dir` if there is one: `down` works without it; sealed with
    WGGW_KEY_FILE's key). Returns why the record could not be written (the change is made
    already), else None."""
    from wggw.store import select
    from wggw.store.sqlite import store_exists

    try:
        if select.db_url(db) is None and not store_exists(state_dir):
            return None
        with select.open_store(state_dir, db=db) as store:
            record(store, kind, subject, details)
    except WggwError as e:
        return str(e)
    return None


def record_repairs(store: Store, by_kind: dict[str, list[str]], trigger: str) -> None:
    """The agent's repairs of one round, one record per kind of change: `by_kind` maps a
    kind (rule, route, nft...) to the objects repaired (their one-line descriptions, secrets
    masked). One transaction for the round: a few inserts, cheap beside the repair."""
    with store.transaction() as tx:
        for kind, objects in sorted(by_kind.items()):
            tx.record_event(
                "agent.repair",
                objects[0],
                {
                    "kind": kind,
                    "trigger": trigger,
                    "count": len(objects),
                    "objects": _first(objects),
                },
            )


def _first(objects: Iterable[str]) -> list[str]:
    return list(objects)[:REPAIR_OBJECTS]
