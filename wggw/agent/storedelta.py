"""A store change that touched only peers, applied as a delta of their WireGuard entries.

With PostgreSQL a commit on any host wakes the agent (LISTEN/NOTIFY), but nothing tells it
what changed; the full round (compile, observe every link, address, route, rule, the nft
table and every peer of every device, apply, observe again) costs ~0.7 s at 1,000 peers, most
of it for a peer added. So the agent compares the state it last applied with the new one:
when everything but peers is equal (interfaces, tenants, gateways, meta) and every touched
peer's tenant is live (converged by a full round on the same interface), the change is the
touched peers' entries only, computed as onepeer.py computes a handed-over change (an upsert
with every field, or a removal, whatever the device holds) and applied in one WireGuard
transaction per device. Nothing else depends on a peer: routes and the nft table are per
tenant pool. Anything else (a new tenant, a changed interface) returns None: the full round.
The periodic resync still observes everything.
"""

from __future__ import annotations

from dataclasses import replace

from wggw.agent import onepeer
from wggw.core import desired as desired_mod
from wggw.core.model import Peer, State
from wggw.core.plan import Change


def peer_delta(old: State, new: State, live: dict[str, str]) -> list[Change] | None:
    """The device changes from `old` to `new`, or None when it is not a peers-only change
    of live tenants."""
    if replace(old, peers=()) != replace(new, peers=()):
        return None
    before = {(p.tenant, p.name): p for p in old.peers}
    after = {(p.tenant, p.name): p for p in new.peers}
    touched = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
    if not touched:
        return []
    tenants = {t.name: t for t in new.tenants}
    ifaces = {i.name: i for i in new.interfaces}
    per_iface: dict[str, tuple[set[str], list[Peer]]] = {}
    for key in touched:
        t = tenants.get(key[0])
        if t is None or live.get(t.name) != t.interface or t.interface not in ifaces:
            return None
        keys, peers = per_iface.setdefault(t.interface, (set(), []))
        for p in (before.get(key), after.get(key)):
            if p is not None:  # every key the peer had or has, retiring ones too
                keys.update(
                    s.public_key for s in desired_mod.device_spec(ifaces[t.interface], (p,)).peers
                )
        if key in after:
            peers.append(after[key])
    changes: list[Change] = []
    for name, (keys, peers) in sorted(per_iface.items()):
        changes += onepeer.peer_changes(desired_mod.device_spec(ifaces[name], peers), keys)
    return changes
