"""The audit log as one hash chain: records, their canonical encoding, chaining, verifying and
filtering. Pure, so every store implementation shares it: a store only persists rows in
order (plus the head: the newest record's seq and hash) and hands them back.

Each record carries `prev`, the hash of the record before it (GENESIS for the first), and
`hash` = SHA-256 over the canonical JSON of all its other fields. `seq` counts 1, 2, 3...
So an edited field breaks that record's hash, a deleted or reordered record breaks the next
one's `prev` or the count, and a store that keeps the head apart from the rows also catches
a cut-off tail. What no chain can catch: someone who may write the store rewriting the whole
chain and the head together; compare the head `audit verify` prints with one kept elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wggw.core import keys as keymod
from wggw.core import timefmt, validate
from wggw.core.errors import StoreError, ValidationError
from wggw.core.keys import Secret

GENESIS = "0" * 64
# Detail fields that hold a whole public key (fingerprinted into `keys`) or a fingerprint.
PUBLIC_KEY_FIELDS = ("public_key",)
FINGERPRINT_FIELDS = ("key", "old", "new")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


class SecretInAuditError(StoreError):
    """A Secret reached an audit record: a bug in the caller, refused before anything is
    written (the transaction rolls back)."""

    def __init__(self) -> None:
        super().__init__("refusing to record a secret in the audit log")


@dataclass(frozen=True)
class Head:
    """The newest record of a chain: the store keeps it apart from the rows."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Record:
    seq: int
    at: float  # unix time
    kind: str  # e.g. peer.add, key.rotate, apply, agent.repair
    subject: str  # the object: interface, tenant, tenant/peer
    uid: int | None  # None: recorded before the chain kept who did it
    user: str | None  # SUDO_USER, else the login name
    command: str | None
    keys: tuple[str, ...]  # fingerprints of the public keys touched
    details: dict[str, Any]
    prev: str
    hash: str
    # `details` as canonical JSON, when the record was made here (a store keeps this text)
    details_text: str = field(default="", compare=False, repr=False)

    def body(self) -> dict[str, Any]:
        """Every field but `hash`: what `hash` is computed over."""
        return {
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind,
            "subject": self.subject,
            "uid": self.uid,
            "user": self.user,
            "command": self.command,
            "keys": list(self.keys),
            "details": self.details,
            "prev": self.prev,
        }

    def view(self) -> dict[str, Any]:
        """As `audit --json` shows it: the body, the hash, and the time in ISO 8601 too."""
        return {**self.body(), "time": timefmt.iso(self.at), "hash": self.hash}


def canonical(obj: Any) -> bytes:
    """The one encoding hashed: sorted keys, no spaces, UTF-8, no NaN. Python's float repr
    round-trips, so a REAL/double column gives back the same text."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def _refuse_secret(obj: object) -> Any:
    if isinstance(obj, Secret):
        raise SecretInAuditError()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def plain(details: Mapping[str, Any]) -> str:
    """`details` as canonical JSON text, refusing a Secret anywhere inside."""
    return json.dumps(
        dict(details),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_refuse_secret,
    )


def touched_keys(details: Mapping[str, Any]) -> tuple[str, ...]:
    """Fingerprints of the public keys a change touched, from its details."""
    found = set()
    for name in PUBLIC_KEY_FIELDS:
        value = details.get(name)
        if isinstance(value, str) and value:
            try:
                found.add(keymod.fingerprint(value))
            except ValueError:  # not base64: not a key, nothing to fingerprint
                pass
    for name in FINGERPRINT_FIELDS:
        value = details.get(name)
        if isinstance(value, str) and _FINGERPRINT.fullmatch(value):
            found.add(value)
    return tuple(sorted(found))


def chain(
    head: Head | None,
    *,
    at: float,
    kind: str,
    subject: str,
    uid: int | None,
    user: str | None,
    command: str | None,
    details: Mapping[str, Any],
    seq: int | None = None,
) -> Record:
    """The record that follows `head` (None: the first). `seq` defaults to the head's + 1;
    a store continues from its kept head even when rows were cut off, so the gap shows."""
    text = plain(details)
    data = json.loads(text)  # what a reader gets back (tuples are lists...)
    body = {
        "seq": seq if seq is not None else (head.seq + 1 if head else 1),
        "at": float(at),
        "kind": kind,
        "subject": subject,
        "uid": uid,
        "user": user,
        "command": command,
        "keys": list(touched_keys(data)),
        "details": data,
        "prev": head.hash if head else GENESIS,
    }
    digest_ = digest(body)
    return Record(**{**body, "keys": tuple(body["keys"])}, hash=digest_, details_text=text)


def record_of(row: Mapping[str, Any]) -> Record:
    """A stored row as a Record; `details`/`keys` may be JSON text (as SQL keeps them).
    Raises ValueError for a row that cannot be read."""
    details = row["details"]
    keys_ = row.get("keys") or []
    if isinstance(details, str):
        details = json.loads(details)
    if isinstance(keys_, str):
        keys_ = json.loads(keys_)
    if not isinstance(details, dict) or not isinstance(keys_, list):
        raise ValueError("details or keys are not JSON of the right shape")
    return Record(
        seq=int(row["seq"]),
        at=float(row["at"]),
        kind=str(row["kind"]),
        subject=str(row["subject"]),
        uid=None if row.get("uid") is None else int(row["uid"]),
        user=row.get("user"),
        command=row.get("command"),
        keys=tuple(str(k) for k in keys_),
        details=details,
        prev=str(row.get("prev") or ""),
        hash=str(row.get("hash") or ""),
    )


def head_of(records: list[Record]) -> Head | None:
    return Head(records[-1].seq, records[-1].hash) if records else None


# --- verify -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """The first bad record: its seq and what is wrong with it."""

    seq: int
    problem: str

    def line(self) -> str:
        return f"audit chain broken at record {self.seq}: {self.problem}"


def verify(
    rows: Iterable[Mapping[str, Any]], head: Head | None, anchor: Head | None = None
) -> Broken | None:
    """None if the rows (in store order) form one intact chain ending at `head` (when the
    store keeps one), else the first bad record. `anchor`: a head printed earlier and kept
    elsewhere; the chain must still hold that record with that hash (a chain rewritten from
    before it, head and all, fails here)."""
    prev: Record | None = None
    held: dict[int, str] = {}
    for row in rows:
        expected = prev.seq + 1 if prev else 1
        try:
            rec = record_of(row)
        except (ValueError, KeyError, TypeError):
            return Broken(_seq_guess(row, expected), "cannot be read (not a chained record)")
        if digest(rec.body()) != rec.hash:
            return Broken(rec.seq, "its content does not match its hash (edited)")
        if rec.seq != expected:
            return Broken(
                expected, f"found record {rec.seq} in its place (deleted, inserted or reordered)"
            )
        if rec.prev != (prev.hash if prev else GENESIS):
            return Broken(rec.seq, "does not follow the record before it (deleted or reordered)")
        prev = rec
        if anchor is not None and rec.seq == anchor.seq:
            held[rec.seq] = rec.hash
    return _check_head(prev, head) or _check_anchor(held, anchor)


def _check_anchor(held: dict[int, str], anchor: Head | None) -> Broken | None:
    if anchor is None:
        return None
    if anchor.seq not in held:
        return Broken(anchor.seq, "missing: the head kept elsewhere names it")
    if held[anchor.seq] != anchor.hash:
        return Broken(anchor.seq, "its hash differs from the head kept elsewhere (rewritten)")
    return None


def parse_head(text: str) -> Head:
    """`--expect SEQ:HASH`, as `audit verify` prints the head."""
    m = re.fullmatch(r"\s*([0-9]{1,18})[:\s]\s*([0-9a-fA-F]{64})\s*", text)
    if not m:
        raise ValidationError(
            "expect", f"{text!r} is not SEQ:HASH (a record number and 64 hex digits)"
        )
    return Head(int(m.group(1)), m.group(2).lower())


def _seq_guess(row: Mapping[str, Any], expected: int) -> int:
    try:
        return int(row["seq"])
    except (KeyError, TypeError, ValueError):
        return expected


def _check_head(last: Record | None, head: Head | None) -> Broken | None:
    if head is None:
        if last is not None:
            return Broken(last.seq, "the store keeps no head for a non-empty chain")
        return None
    count = last.seq if last else 0
    if head.seq > count:
        return Broken(
            count + 1,
            f"missing: the chain ends at record {count} but its head is record {head.seq} "
            "(the tail was cut off)",
        )
    if last is None or head.seq != last.seq or head.hash != last.hash:
        return Broken(count, f"the kept head (record {head.seq}) does not match the chain's end")
    return None


# --- filter -------------------------------------------------------------------------------


def parse_since(text: str, now: float) -> float:
    """`--since`: an age (30s, 30m, 1h, 2d, 1w, 1d12h) or an ISO 8601 date/time (UTC unless
    it names a zone). Returns unix time."""
    value = text.strip()
    if re.fullmatch(r"[0-9]+[wdhms]([0-9]+[wdhms])*", value.lower()):
        return now - validate.duration("since", value)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            "since", f"{text!r} is neither an age like 30m, 1h, 2d nor an ISO 8601 time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def concerns_tenant(rec: Record, tenant: str) -> bool:
    """The record is about `tenant` or one of its peers."""
    if rec.subject.startswith(tenant + "/") or rec.details.get("tenant") == tenant:
        return True
    return rec.subject == tenant and rec.kind.startswith("tenant.")


def select(records: Iterable[Record], since: float | None, tenant: str | None) -> list[Record]:
    return [
        r
        for r in records
        if (since is None or r.at >= since) and (tenant is None or concerns_tenant(r, tenant))
    ]
