"""What the operator wants: interfaces, tenants, peers (frozen dataclasses, no I/O).

`State` is the whole desired configuration as loaded from the store; the data plane
compiles it (`desired`) without knowing how it was stored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from wggw.core.keys import Secret

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class Gateway:
    """A host that runs an agent (`wggw agent --gateway NAME`) in a fleet sharing one store.
    Its uplink and next hops are the defaults of the tenants placed on it."""

    name: str
    uplink: str | None = None  # None: the device of main's default route
    via: tuple[IPAddress, ...] = ()  # next hop per family
    created_at: float = 0.0

    def via_ip(self, version: int) -> IPAddress | None:
        return next((v for v in self.via if v.version == version), None)


@dataclass(frozen=True)
class Interface:
    name: str
    listen_port: int
    endpoint: str  # HOST:PORT the clients dial
    private_key: Secret
    public_key: str
    mtu: int | None = None
    # The gateways it runs on, by priority: the first is the active one, the others stand by
    # (issue 14). Empty: the implicit local gateway of a single-host store.
    gateways: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tenant:
    name: str
    interface: str
    pools: tuple[IPNetwork, ...]  # at most one per family
    egress: tuple[IPAddress, ...]  # at most one per family, family must have a pool
    table: int  # routing table id, naming.TABLE_MIN..TABLE_MAX
    uplink: str | None = None  # None: the device of main's default route
    via: tuple[IPAddress, ...] = ()  # next hop per family; none: main's gateway on uplink
    rotate_after: int | None = None  # seconds; None: the global default policy
    gateway: str | None = None  # pinned to one gateway; None: wherever its interface runs
    moving_to: str | None = None  # `tenant move` in progress: also placed there until done

    def pool(self, version: int) -> IPNetwork | None:
        return next((p for p in self.pools if p.version == version), None)

    def egress_ip(self, version: int) -> IPAddress | None:
        return next((e for e in self.egress if e.version == version), None)

    def via_ip(self, version: int) -> IPAddress | None:
        return next((v for v in self.via if v.version == version), None)


@dataclass(frozen=True)
class RetiringKey:
    """The previous key of a rotated peer, kept working during the grace period."""

    public_key: str
    psk: Secret | None
    addresses: tuple[IPInterface, ...]
    retire_at: float  # unix time: end of the grace period


@dataclass(frozen=True)
class Peer:
    tenant: str
    name: str
    public_key: str
    addresses: tuple[IPInterface, ...]  # /32 and /128 host addresses inside the tenant's pools
    key_created_at: float  # unix time
    private_key: Secret | None = None  # None when the peer brought its own key
    psk: Secret | None = None
    keepalive: int | None = None
    dns: tuple[IPAddress, ...] = ()
    expires_at: float | None = None
    created_at: float = 0.0
    retiring: RetiringKey | None = None

    @property
    def ref(self) -> str:
        return f"{self.tenant}/{self.name}"


@dataclass(frozen=True)
class State:
    interfaces: tuple[Interface, ...] = ()
    tenants: tuple[Tenant, ...] = ()
    peers: tuple[Peer, ...] = ()
    meta: dict[str, object] = field(default_factory=dict, compare=False)
    gateways: tuple[Gateway, ...] = ()

    def tenants_of(self, interface: str) -> tuple[Tenant, ...]:
        return tuple(t for t in self.tenants if t.interface == interface)

    def peers_of(self, tenant: str) -> tuple[Peer, ...]:
        return tuple(p for p in self.peers if p.tenant == tenant)


def gateway_address(pool: IPNetwork) -> IPInterface:
    """The gateway's own address in a pool: the first host, with the pool's prefix."""
    first = pool.network_address + 1
    return ipaddress.ip_interface(f"{first}/{pool.prefixlen}")
