"""Checks and address allocation for many new peers at once (pure): bulk add and import.

One pass over the loaded state builds the indexes (names per tenant, key holders, used
addresses); each new peer is then checked and allocated in O(1) amortised, and recorded
in the indexes so the next one sees it. Adding N peers costs O(state + N), where calling
the one-peer checks N times would cost O(state x N).
"""

from __future__ import annotations

import ipaddress

from wggw.core import alloc, validate
from wggw.core.errors import NotFoundError, ValidationError
from wggw.core.model import IPAddress, IPInterface, IPNetwork, Peer, State, Tenant


class PoolCursor:
    """Hands out the lowest free addresses of one pool in rising order. Addresses are only
    ever taken during a batch, so the search never needs to look below its last answer."""

    def __init__(self, pool: IPNetwork, used: set[IPAddress]):
        self.pool = pool
        self.used = used  # shared with the Batch: also holds requested addresses
        self.reserved = alloc.reserved(pool)
        self.next = int(pool.network_address) + 2  # network + gateway come first
        self.last = int(pool.broadcast_address)

    def take(self, tenant: str) -> IPInterface:
        make = ipaddress.IPv4Address if self.pool.version == 4 else ipaddress.IPv6Address
        while self.next <= self.last:
            addr = make(self.next)
            self.next += 1
            if addr not in self.used and addr not in self.reserved:
                self.used.add(addr)
                return alloc.host(addr)
        raise ValidationError("pool", f"{self.pool} of tenant {tenant} has no free address left")


class Batch:
    """The indexes of one loaded state, updated as new peers are accepted."""

    def __init__(self, state: State):
        self.tenants = {t.name: t for t in state.tenants}
        self.names: dict[str, set[str]] = {t: set() for t in self.tenants}
        self.keys: dict[str, tuple[str, str]] = {
            i.public_key: ("interface", i.name) for i in state.interfaces
        }
        for p in reversed(state.peers):  # the first holder wins, as validate.key_user says
            self.names.setdefault(p.tenant, set()).add(p.name)
            if p.retiring is not None:
                self.keys[p.retiring.public_key] = ("peer", p.ref)
            self.keys[p.public_key] = ("peer", p.ref)
        self.used = alloc.used_addresses(state)
        self._cursors: dict[tuple[str, IPNetwork], PoolCursor] = {}

    def tenant(self, name: str) -> Tenant:
        found = self.tenants.get(name)
        if found is None:
            raise NotFoundError("tenant", f"no tenant named {name!r}")
        return found

    def check(self, peer: Peer) -> None:
        """A new peer: unique name in its tenant, a key no other peer or gateway uses."""
        self.tenant(peer.tenant)
        validate.check_new_peer(
            peer, peer.name in self.names[peer.tenant], self.keys.get(peer.public_key)
        )

    def allocate(self, tenant: Tenant) -> tuple[IPInterface, ...]:
        """The next free address of each of the tenant's pools (alloc.allocate's answer)."""
        out = []
        for pool in tenant.pools:
            cursor = self._cursors.get((tenant.name, pool))
            if cursor is None:
                cursor = self._cursors[(tenant.name, pool)] = PoolCursor(pool, self.used)
            out.append(cursor.take(tenant.name))
        return tuple(out)

    def requested(self, tenant: Tenant, addr: IPInterface, field: str) -> IPInterface:
        """An address someone asks for (import): alloc.check_requested against the indexes."""
        taken = alloc.check_free(tenant, addr, self.used, field)
        self.used.add(taken.ip)
        return taken

    def accept(self, peer: Peer) -> None:
        """Record a checked peer, so the next one of the batch sees its name and key."""
        self.names[peer.tenant].add(peer.name)
        self.keys[peer.public_key] = ("peer", peer.ref)
        self.used.update(a.ip for a in peer.addresses)

    def taken_names(self, tenant: str) -> set[str]:
        return self.names[self.tenant(tenant).name]


def free_name(taken: set[str], wanted: str | None, counter: list[int]) -> str:
    """`wanted` if free, else the next `imported-N` (the counter only goes up: linear)."""
    if wanted and wanted not in taken:
        return wanted
    while f"imported-{counter[0]}" in taken:
        counter[0] += 1
    return f"imported-{counter[0]}"
