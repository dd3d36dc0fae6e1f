"""Deterministic allocation (pure): peer addresses from a tenant's pools, routing-table ids.

A peer gets the lowest free host address of each pool. Never the network address,
the IPv4 broadcast address, the gateway's own address (`model.gateway_address`),
nor an address of another peer or of another peer's retiring key. The search walks
upwards from the first candidate and skips only used addresses, so it costs
O(peers) even in an IPv6 /64.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from wggw.core import naming
from wggw.core.errors import ValidationError
from wggw.core.model import IPAddress, IPInterface, IPNetwork, State, Tenant, gateway_address


def used_addresses(state: State) -> set[IPAddress]:
    """Every address held by a peer or by a peer's retiring key (pools never overlap,
    so one set across all tenants is exact)."""
    used: set[IPAddress] = set()
    for p in state.peers:
        used.update(a.ip for a in p.addresses)
        if p.retiring is not None:
            used.update(a.ip for a in p.retiring.addresses)
    return used


def reserved(pool: IPNetwork) -> set[IPAddress]:
    """Addresses of a pool no peer may ever get."""
    out = {pool.network_address, gateway_address(pool).ip}
    if pool.version == 4:
        out.add(pool.broadcast_address)
    return out


def next_free(pool: IPNetwork, used: Iterable[IPAddress]) -> IPAddress | None:
    """The lowest assignable address of `pool` not in `used`, or None when full."""
    taken = set(used) | reserved(pool)
    candidate = int(pool.network_address) + 2  # network + gateway come first
    last = int(pool.broadcast_address)
    while candidate <= last:
        addr = (
            ipaddress.ip_address(candidate)
            if pool.version == 4
            else ipaddress.IPv6Address(candidate)
        )
        if addr not in taken:
            return addr
        candidate += 1
    return None


def host(addr: IPAddress) -> IPInterface:
    """A peer address as an interface with a host prefix (/32 or /128)."""
    return ipaddress.ip_interface(f"{addr}/{addr.max_prefixlen}")


def allocate(state: State, tenant: Tenant) -> tuple[IPInterface, ...]:
    """One address in each of the tenant's pools, or ValidationError('pool') when one is full."""
    return allocate_from(tenant, used_addresses(state))


def allocate_from(tenant: Tenant, used: set[IPAddress]) -> tuple[IPInterface, ...]:
    """`allocate`, given the used addresses (the tenant's own suffice: pools never overlap)."""
    out = []
    for pool in tenant.pools:
        addr = next_free(pool, used)
        if addr is None:
            raise ValidationError(
                "pool", f"{pool} of tenant {tenant.name} has no free address left"
            )
        out.append(host(addr))
    return tuple(out)


def check_requested(
    state: State, tenant: Tenant, addr: IPInterface, field: str = "address"
) -> IPInterface:
    """An address someone asks for (import): a free host address inside the tenant's pools."""
    return check_free(tenant, addr, used_addresses(state), field)


def check_free(
    tenant: Tenant, addr: IPInterface, used: set[IPAddress], field: str = "address"
) -> IPInterface:
    """`check_requested`, given the used addresses (a batch keeps them as it goes)."""
    if addr.network.prefixlen != addr.max_prefixlen:
        raise ValidationError(field, f"{addr} is not a single host address (/{addr.max_prefixlen})")
    pool = tenant.pool(addr.version)
    if pool is None or addr.ip not in pool:
        pools = ", ".join(map(str, tenant.pools))
        raise ValidationError(
            field, f"{addr.ip} is outside the pools of tenant {tenant.name} ({pools})"
        )
    if addr.ip in reserved(pool):
        raise ValidationError(
            field, f"{addr.ip} is the network, broadcast or gateway address of {pool}"
        )
    if addr.ip in used:
        raise ValidationError(field, f"{addr.ip} is already used by another peer")
    return host(addr.ip)


def next_table(state: State) -> int:
    """The lowest routing-table id in wggw's range that no tenant holds."""
    taken = {t.table for t in state.tenants}
    for table in range(naming.TABLE_MIN, naming.TABLE_MAX + 1):
        if table not in taken:
            return table
    raise ValidationError(
        "table", f"all routing tables {naming.TABLE_MIN}-{naming.TABLE_MAX} are in use"
    )
