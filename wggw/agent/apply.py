"""The agent's one seam to the apply path: choose the backend, converge (with the rotation
housekeeping), apply one peer's change, and repair drift with some kinds of change held back.

The backend is chosen as every applying command chooses it (ops.dataplane.system_for); the
converge itself is the one path (ops.converge), with the store lock held by the agent's caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from wggw.core.plan import Change, DeleteNft, ReplaceNft
from wggw.ops import converge as reconcile
from wggw.ops import rotation

Echo = Callable[[str], None] | None


def system_for(backend: str | None):
    from wggw.ops import dataplane

    return dataplane.system_for(backend, may_load=True)


def full_converge(store, system, echo: Echo = None, housekeeping: bool = True):
    """`apply`: retire/expire due keys, then converge. The caller holds the store lock (or
    acts for a process that does, then without housekeeping, which writes)."""
    report = rotation.housekeeping(store, system, time.time()) if housekeeping else None
    result = reconcile.converge(store.load(), system, echo)
    return report, result


def peer_converge(
    store, system, tenant: str, peer: str | None, keys: Iterable[str], echo: Echo = None
) -> list[Change]:
    """One peer's WireGuard entries (reconcile.converge_peer), for a CLI that holds the lock
    and waits: the store is read without the lock. A tenant not live yet: the whole converge."""
    with store.snapshot() as tx:
        t = tx.tenant(tenant)
        iface = tx.interface(t.interface) if t is not None else None
        p = tx.peer(tenant, peer) if peer is not None and t is not None else None
    if t is None or iface is None:
        return full_converge(store, system, echo, housekeeping=False)[1].changes
    scope = reconcile.PeerScope(iface, t, () if p is None else (p,), frozenset(keys))
    changes = reconcile.converge_peer(scope, system, echo)
    if changes is None:
        changes = full_converge(store, system, echo, housekeeping=False)[1].changes
    return changes


def repair(
    state,
    system,
    hold: Callable[[Change], bool],
    echo: Echo = None,
    reload_nft: bool = False,
    applied_hook: Callable[[], None] | None = None,
    previous: reconcile.Result | None = None,
    keep: Callable[[reconcile.Result], None] | None = None,
):
    """Drift repair: plan, apply the changes not held back by `hold`, observe again.
    Returns (applied, held, left): `left` is what differs again right after the apply
    (something undid it at once: the caller counts that against the back-off).
    `applied_hook` runs between the apply and the second look: the agent drops the kernel
    events its own apply caused there, so that a change made by someone else after that
    moment is either seen by the second look or arrives as a fresh event.
    `reload_nft`: someone else changed wggw's nft table; observation compares digests and
    counts, so an element edited in place looks unchanged: load the table again anyway.
    `previous`: the last round's result for this very state (its compiled desired state is
    reused while the host facts match); `keep` is given this round's last result."""
    first = reconcile.compute(state, system, previous=previous)
    changes = first.changes
    if (
        reload_nft
        and first.desired.nft.digest
        and not any(isinstance(c, (ReplaceNft, DeleteNft)) for c in changes)
    ):
        changes = [*changes, ReplaceNft(first.desired.nft)]
    applied = [c for c in changes if not hold(c)]
    held = [c for c in changes if hold(c)]
    left: list[Change] = []
    if applied:
        system.apply(applied, echo)
        if applied_hook is not None:
            applied_hook()
        second = reconcile.compute(state, system, check_nft=False, previous=first)
        left = [c for c in second.changes if not hold(c)]
        first = second
    if keep is not None:
        keep(first)
    return applied, held, left
