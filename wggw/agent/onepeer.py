"""The agent's one-peer change: a delta of one peer's WireGuard entries on a device the agent
has converged, with no read of the whole device and no load of the whole store.

`peer add/remove --apply` hands the agent the tenant, the peer and the keys it touched (the
CLI has committed them and holds the store lock meanwhile). What the agent reads: the tenant,
its interface and the peer by point queries. What it writes: one WireGuard transaction (one
UAPI `set`, or one genetlink message) that upserts the peer with every field, or removes its
keys; the same change, whatever was on the device before, so no observation is needed to
plan it. The verification is the device's answer to that transaction (errno 0 from
wireguard-go, the genetlink ack of the kernel), which covers exactly that peer: neither can
be asked for one peer, only for all of them, which is what this path exists to avoid.

Everything else stays the full reconcile's job, and the caller falls back to it: a tenant the
agent has not converged (a new tenant, a moved interface, a failed round), a peer the store
does not hold, a device that refuses the transaction. The periodic resync re-reads everything.
Nothing in the nft table is per peer (the tenant's pools are), so a peer change has no nft part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from wggw.core import desired as desired_mod
from wggw.core.plan import Change, RemovePeer, UpsertPeer

Echo = Callable[[str], None] | None


def live_tenants(state) -> dict[str, str]:
    """tenant -> interface name, for the tenants a full round has just converged."""
    return {t.name: t.interface for t in state.tenants}


def peer_changes(want, keys: Iterable[str]) -> list[Change]:
    """The peer entries of `keys` as the device must hold them: an upsert (every field set,
    like `wg syncconf`, no remove-and-add) for each key the store wants, a removal for the
    others. Upserts first: add before delete."""
    wanted = {s.public_key: s for s in want.peers}
    ordered = sorted(set(keys))
    upserts: list[Change] = [UpsertPeer(want.name, wanted[k], True) for k in ordered if k in wanted]
    removals: list[Change] = [RemovePeer(want.name, k) for k in ordered if k not in wanted]
    return upserts + removals


def delta(
    store,
    system,
    live: dict[str, str],
    tenant: str,
    peer: str | None,
    keys: Iterable[str],
    echo: Echo = None,
) -> list[Change] | None:
    """Apply one peer's entries as a delta; None when this path does not apply (the caller
    then runs the observing reconcile). A device error is raised: the caller falls back too."""
    with store.snapshot() as tx:
        t = tx.tenant(tenant)
        if t is None or live.get(tenant) != t.interface:
            return None
        iface = tx.interface(t.interface)
        p = tx.peer(tenant, peer) if peer is not None else None
    if iface is None or (peer is not None and p is None):
        return None
    keys = set(keys)
    if p is not None:
        keys.add(p.public_key)
    changes = peer_changes(desired_mod.device_spec(iface, () if p is None else (p,)), keys)
    apply_peers = getattr(system, "apply_peers", None)
    if apply_peers is None:  # the fake: its apply is the whole of it
        system.apply(changes, echo)
    else:
        apply_peers(changes, echo)
    return changes
