"""Carry out rotation and expiry: store changes in one transaction, the live interface
through the same reconcile path as `apply`, then deliver new client configs.

Crash safety comes from the order: (1) the new key and the retiring old key are stored
together in one transaction; (2) converge adds the new key beside the old one; (3) the
config is written and the notify command run; (4) the delivery is recorded. A run killed
anywhere leaves the old key working; the next run (or `apply`) converges, and any
rotation whose config was not delivered yet is delivered again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from wggw.core import alloc, keys
from wggw.core import rotate as policy
from wggw.core.errors import ValidationError
from wggw.core.model import Peer, RetiringKey, State
from wggw.fsutil import atomic_write, make_private_dir
from wggw.ops import converge

NOTIFY_TIMEOUT = 60


@dataclass
class Report:
    rotated: list[dict] = field(default_factory=list)
    own_key: list[str] = field(default_factory=list)
    in_grace: list[str] = field(default_factory=list)
    retired: list[dict] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    delivered: list[dict] = field(default_factory=list)
    notify_failed: list[dict] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        would = "would " if self.dry_run else ""
        out = [f"{would}rotate {r['peer']} ({r['old']} -> {r['new']})" for r in self.rotated]
        out += [f"{would}retire old key of {r['peer']} ({r['old']})" for r in self.retired]
        out += [f"{would}remove expired peer {p}" for p in self.expired]
        out += [f"needs its owner's action (own key): {p}" for p in self.own_key]
        out += [f"wrote {d['path']}" for d in self.delivered]
        out += [f"notify failed for {f['peer']}: {f['error']}" for f in self.notify_failed]
        return out

    def as_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "dry_run",
                "rotated",
                "retired",
                "expired",
                "own_key",
                "in_grace",
                "delivered",
                "notify_failed",
            )
        }


def _retiring_fingerprint(p: Peer) -> str:
    assert p.retiring is not None  # the policy retires only peers that have a retiring key
    return keys.fingerprint(p.retiring.public_key)


def _would(d: policy.Decision, report: Report) -> None:
    """Fill a dry-run report from a decision, changing nothing."""
    report.expired = [p.ref for p in d.expire]
    report.retired = [{"peer": p.ref, "old": _retiring_fingerprint(p)} for p in d.retire]
    report.rotated = [
        {"peer": p.ref, "old": keys.fingerprint(p.public_key), "new": "(new)"} for p in d.rotate
    ]


def handshakes(system) -> dict[str, float]:
    return {
        k: p.last_handshake for dev in system.observe().wg.values() for k, p in dev.peers.items()
    }


def _retire_and_expire(tx, d: policy.Decision, report: Report) -> None:
    for p in d.expire:
        tx.remove_peer(p.tenant, p.name)
        tx.record_event("peer.expire", p.ref, {"public_key": p.public_key})
        report.expired.append(p.ref)
    for p in d.retire:
        old = _retiring_fingerprint(p)
        tx.update_peer(replace(p, retiring=None))
        tx.record_event("key.retire", p.ref, {"old": old})
        report.retired.append({"peer": p.ref, "old": old})


def housekeeping(store, system, now: float, dry_run: bool = False) -> Report:
    """Retire finished rotations and remove expired peers (the caller holds the lock)."""
    report = Report(dry_run=dry_run)
    state = store.load()
    if not any(p.retiring or p.expires_at for p in state.peers):
        return report  # nothing time-bound: skip observing the live devices
    d = policy.housekeeping(state, now, handshakes(system))
    if dry_run:
        _would(d, report)
        return report
    if d.expire or d.retire:
        with store.transaction() as tx:
            _retire_and_expire(tx, d, report)
    return report


def _new_key(p: Peer, state: State, used: set, now: float, grace: int) -> Peer:
    priv, pub = keys.keypair()
    tenant = next(t for t in state.tenants if t.name == p.tenant)
    if grace <= 0:  # no overlap asked for: the new key takes over the addresses at once
        return replace(
            p,
            public_key=pub,
            private_key=priv,
            psk=keys.generate_psk(),
            key_created_at=now,
            retiring=None,
        )
    addrs = []
    for pool in tenant.pools:
        addr = alloc.next_free(pool, used)
        if addr is None:
            raise ValidationError(
                "pool",
                f"{pool} of tenant {tenant.name} has no free address for "
                f"the new key of {p.ref} (use --grace 0 to rotate in place)",
            )
        used.add(addr)
        addrs.append(alloc.host(addr))
    old = RetiringKey(p.public_key, p.psk, p.addresses, now + grace)
    return replace(
        p,
        public_key=pub,
        private_key=priv,
        psk=keys.generate_psk(),
        addresses=tuple(addrs),
        key_created_at=now,
        retiring=old,
    )


def _rotate_in_store(store, d: policy.Decision, now: float, grace: int, report: Report) -> None:
    with store.transaction() as tx:
        _retire_and_expire(tx, d, report)
        state = tx.load()
        used = alloc.used_addresses(state)
        current = {p.ref: p for p in state.peers}
        for due in d.rotate:
            p = current[due.ref]
            new = _new_key(p, state, used, now, grace)
            tx.update_peer(new)
            entry = {
                "peer": p.ref,
                "old": keys.fingerprint(p.public_key),
                "new": keys.fingerprint(new.public_key),
            }
            tx.record_event("key.rotate", p.ref, {**entry, "grace": grace})
            report.rotated.append(entry)


def rotate(
    store,
    system,
    now: float,
    *,
    older_than: int | None,
    grace: int,
    selected: set[str] | None,
    out: Path | None,
    notify: str | None,
    dry_run: bool,
    gateway: str | None = None,
) -> Report:
    """Rotate in the store (every peer selected), then converge this host's part of it
    (ops.dataplane.placed: a fleet's other gateways apply theirs through their agents)."""
    from wggw.ops.dataplane import placed

    report = Report(dry_run=dry_run)
    with store.locked():
        state = store.load()
        d = policy.decide(state, now, handshakes(system), older_than, selected)
        report.own_key = [p.ref for p in d.own_key]
        report.in_grace = [p.ref for p in d.in_grace]
        if dry_run:
            _would(d, report)
            return report
        if d.rotate or d.retire or d.expire:
            _rotate_in_store(store, d, now, grace, report)
        converge.converge(placed(store.load(), gateway), system)
        if out is not None:
            _deliver(store, out, notify, report)
    return report


def _undelivered(store, state: State) -> list[Peer]:
    """Rotated peers whose current key's config has not been delivered yet (read from the
    audit events, so a run killed before delivering is caught up by the next one)."""
    out = []
    for p in state.peers:
        if p.private_key is None or p.key_created_at <= p.created_at:
            continue  # never rotated: its first config is the operator's to hand out
        fp = keys.fingerprint(p.public_key)
        events = store.events(p.ref)
        rotated = any(e["kind"] == "key.rotate" and e["details"].get("new") == fp for e in events)
        delivered = any(
            e["kind"] == "config.delivered" and e["details"].get("key") == fp for e in events
        )
        if rotated and not delivered:
            out.append(p)
    return out


def _deliver(store, out: Path, notify: str | None, report: Report) -> None:
    from wggw.ops import render  # Jinja2: only when configs are written (not on every apply)

    state = store.load()
    ifaces = {i.name: i for i in state.interfaces}
    tenants = {t.name: t for t in state.tenants}
    for p in _undelivered(store, state):
        tenant = tenants[p.tenant]
        make_private_dir(out)
        make_private_dir(out / p.tenant)
        path = out / p.tenant / f"{p.name}.conf"
        atomic_write(path, render.client_config(ifaces[tenant.interface], tenant, p))
        entry = {"peer": p.ref, "path": str(path)}
        if notify:
            error = _notify(notify, p, path)
            if error:
                report.notify_failed.append({**entry, "error": error})
                report.delivered.append(entry)
                continue  # not recorded: the next run notifies again
        with store.transaction() as tx:
            tx.record_event(
                "config.delivered",
                p.ref,
                {"key": keys.fingerprint(p.public_key), "path": str(path)},
            )
        report.delivered.append(entry)


def _notify(command: str, p: Peer, path: Path) -> str | None:
    """Run the operator's command (no shell) with tenant, peer and config path."""
    argv = shlex.split(command) + [p.tenant, p.name, str(path)]
    env = {**os.environ, "WGGW_TENANT": p.tenant, "WGGW_PEER": p.name, "WGGW_CONFIG": str(path)}
    try:
        res = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=NOTIFY_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or [""])[-1][:200]
        return f"{argv[0]} exited {res.returncode}{': ' + tail if tail else ''}"
    return None
