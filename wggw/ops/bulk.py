"""Many peers in one command: `peer add acme/dev-{1..500}` and `peer add --from-file FILE`
(CSV or JSON). One store transaction, all or nothing: a bad entry is one line naming it,
and nothing is written. Linear in the number of peers (core/batch.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wggw.core import keys, validate
from wggw.core.batch import Batch
from wggw.core.errors import ValidationError, WggwError
from wggw.core.model import Peer
from wggw.store.sqlite import Store

MAX_PEERS = 100_000  # one command; a typo like {1..10000000} is refused, not run
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
FIELDS = ("ref", "tenant", "name", "public_key", "keepalive", "dns", "expires")


@dataclass(frozen=True)
class Entry:
    """One peer to add, as given (`where` names it in errors: an argument or a file line)."""

    ref: str
    where: str
    public_key: str | None = None
    keepalive: int | None = None
    dns: tuple[str, ...] = ()
    expires: str | None = None


def expand(pattern: str) -> list[str]:
    """`acme/dev-{1..3}` -> acme/dev-1, acme/dev-2, acme/dev-3 (as bash does; `{01..10}`
    keeps the zero padding). A pattern without a range is itself."""
    m = _RANGE.search(pattern)
    if m is None:
        return [pattern]
    lo, hi = int(m.group(1)), int(m.group(2))
    width = len(m.group(1)) if m.group(1).startswith("0") else 0
    if hi < lo:
        raise ValidationError("peer", f"{pattern}: the range {m.group(0)} counts down")
    if hi - lo + 1 > MAX_PEERS:
        raise ValidationError("peer", f"{pattern}: more than {MAX_PEERS:,} peers in one command")
    head, tail = pattern[: m.start()], pattern[m.end() :]
    out = []
    for n in range(lo, hi + 1):
        out.extend(expand(f"{head}{n:0{width}d}{tail}"))
        if len(out) > MAX_PEERS:
            raise ValidationError(
                "peer", f"{pattern}: more than {MAX_PEERS:,} peers in one command"
            )
    return out


def read_file(path: Path) -> list[Entry]:
    """Entries of a JSON list of objects or a CSV file with a header row. Columns/keys:
    `ref` (TENANT/PEER) or `tenant` and `name`; optional `public_key`, `keepalive`, `dns`
    (IPs separated by spaces or commas), `expires`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as e:
        raise ValidationError(
            "from-file", f"cannot read {path}: {getattr(e, 'strerror', e)}"
        ) from None
    if text.lstrip().startswith(("[", "{")):
        try:
            rows = json.loads(text)
        except ValueError as e:
            raise ValidationError("from-file", f"{path} is not valid JSON: {e}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValidationError("from-file", f"{path}: expected a JSON list of objects")
        where = [f"{path} entry {i + 1}" for i in range(len(rows))]
    else:
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
        where = [f"{path} line {i + 2}" for i in range(len(rows))]  # line 1 is the header
    if len(rows) > MAX_PEERS:
        raise ValidationError("from-file", f"{path}: more than {MAX_PEERS:,} peers in one command")
    return [_entry(row, w) for row, w in zip(rows, where, strict=True)]


def _entry(row: dict[str, Any], where: str) -> Entry:
    unknown = sorted(k for k in row if k not in FIELDS)
    if unknown:
        raise ValidationError(
            "from-file", f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})"
        )
    ref = _text(row.get("ref")) or (
        f"{_text(row.get('tenant'))}/{_text(row.get('name'))}"
        if row.get("tenant") or row.get("name")
        else ""
    )
    if not ref:
        raise ValidationError(
            "from-file", f"{where}: no `ref` (TENANT/PEER) nor `tenant` and `name`"
        )
    keepalive = row.get("keepalive")
    try:
        keepalive = None if keepalive in (None, "") else int(keepalive)
    except (TypeError, ValueError):
        raise ValidationError(
            "from-file", f"{where}: keepalive {keepalive!r} is not a number"
        ) from None
    dns = row.get("dns") or []
    dns = (
        tuple(map(str, dns)) if isinstance(dns, list) else tuple(str(dns).replace(",", " ").split())
    )
    return Entry(
        ref,
        where,
        _text(row.get("public_key")) or None,
        keepalive,
        dns,
        _text(row.get("expires")) or None,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def entries_from_refs(
    patterns: Iterable[str],
    public_key: str | None,
    keepalive: int | None,
    dns: Iterable[str],
    expires: str | None,
) -> list[Entry]:
    """The command line's refs (brace ranges expanded), each with the shared options."""
    refs = [r for p in patterns for r in expand(p)]
    if public_key is not None and len(refs) > 1:
        raise ValidationError("public-key", "one key cannot serve several peers")
    return [Entry(r, r, public_key, keepalive, tuple(dns), expires) for r in refs]


def add_peers(store: Store, entries: list[Entry], now: float | None = None) -> list[Peer]:
    """Add every entry in one transaction, or none: the first bad entry raises a
    ValidationError naming it. Keys are generated unless the entry brings a public key."""
    now = time.time() if now is None else now
    seen: set[str] = set()
    peers = []
    with store.transaction() as tx:
        batch = Batch(tx.load())
        for entry in entries:
            if entry.ref in seen:
                raise _named(ValidationError("peer", f"{entry.ref} is given twice"), entry)
            seen.add(entry.ref)
            try:
                peer = _new_peer(entry, batch, now)
            except WggwError as e:
                raise _named(e, entry) from None
            batch.accept(peer)
            peers.append(peer)
        for peer in peers:
            tx.add_peer(peer)
            tx.record_event(
                "peer.add",
                peer.ref,
                {
                    "public_key": peer.public_key,
                    "own_key": peer.private_key is None,
                    "addresses": [str(a) for a in peer.addresses],
                },
            )
    return peers


def _new_peer(entry: Entry, batch: Batch, now: float) -> Peer:
    tenant_name, peer_name = validate.peer_ref(entry.ref)
    tenant = batch.tenant(tenant_name)
    dns_ips = tuple(
        validate.ip("dns", d) for item in entry.dns for d in item.split(",") if d.strip()
    )
    expires_at = None if entry.expires is None else validate.when("expires", entry.expires, now)
    if entry.public_key is not None:
        private, psk, public = None, None, validate.public_key(entry.public_key)
    else:
        private, psk = keys.generate_private(), keys.generate_psk()
        public = keys.public_of(private)
    peer = Peer(
        tenant=tenant_name,
        name=peer_name,
        public_key=public,
        addresses=(),
        key_created_at=now,
        private_key=private,
        psk=psk,
        keepalive=validate.keepalive(entry.keepalive),
        dns=dns_ips,
        expires_at=expires_at,
        created_at=now,
    )
    batch.check(peer)
    return replace(peer, addresses=batch.allocate(tenant))


def _named(e: WggwError, entry: Entry) -> WggwError:
    """The same error, its message prefixed with the entry it concerns."""
    if isinstance(e, ValidationError) and entry.where not in e.problem:
        return type(e)(e.field, f"{e.problem} ({entry.where})")
    return e
