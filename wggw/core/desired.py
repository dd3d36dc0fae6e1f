"""Compile the operator's `State` into kernel terms (pure).

Host facts the compilation depends on (main's default routes, which addresses the
host already has) are observed by the backends and passed in, so this module stays
free of I/O and is unit tested without root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wggw.core import conflicts, ha, naming, ruletree
from wggw.core.errors import ValidationError
from wggw.core.hostfacts import HostFacts
from wggw.core.model import Interface, IPInterface, Peer, State, Tenant, gateway_address
from wggw.core.nftables import NftSpec, render
from wggw.core.ruletree import RuleSpec
from wggw.core.tcguard import EGRESS, INGRESS, TcSpec
from wggw.core.wgtypes import WgDeviceSpec, WgPeerSpec

DEFAULT_MTU = 1420  # 1500 - 80, as wg-quick
SYSCTL_FORWARD = {4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding"}


@dataclass(frozen=True, order=True)
class AddrSpec:
    ifname: str
    cidr: str  # "10.0.0.1/24"
    egress: bool = False  # an egress address wggw adds to an uplink (IFA_PROTO marked)
    # Anything else observed on it (a peer address, label, scope, flags, finite lifetime),
    # as (name, value) pairs; wggw's own addresses have none.
    extra: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        extra = f" proto {naming.ADDR_PROTO:#x}" if self.egress else ""
        extra += "".join(f" {k} {v}" for k, v in self.extra)
        return f"ip address add {self.cidr} dev {self.ifname}{extra}"


@dataclass(frozen=True, order=True)
class RouteSpec:
    family: int
    table: int
    dst: str  # "default" or a CIDR
    dev: str
    gateway: str | None = None
    src: str | None = None
    metric: int = 0  # 0: the kernel's default (IPv6 shows it as 1024)
    # Anything else observed on the route (type, protocol, metrics, flags...), as (name,
    # value) pairs; wggw's own routes have none.
    extra: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        fam = "-6 " if self.family == 6 else ""
        via = f" via {self.gateway}" if self.gateway else ""
        src = f" src {self.src}" if self.src else ""
        more = f" metric {self.metric}" if self.metric else ""
        more += "".join(f" {k} {v}" for k, v in self.extra)
        return f"ip {fam}route add {self.dst}{via} dev {self.dev}{src} table {self.table}{more}"


@dataclass(frozen=True)
class LinkSpec:
    name: str
    mtu: int


@dataclass(frozen=True)
class Desired:
    sysctls: dict[str, str]
    wg: dict[str, WgDeviceSpec]
    links: dict[str, LinkSpec]
    addresses: frozenset[AddrSpec]
    routes: frozenset[RouteSpec]
    rules: frozenset[RuleSpec]
    nft: NftSpec
    tc: frozenset[TcSpec] = frozenset()


def _network_text(a: IPInterface) -> str:
    """str(a.network), without building the network object for a host address (/32, /128:
    nearly every peer address; 10,000 of them on every compile)."""
    if a.version == 4 and a.network.prefixlen == 32:
        return "{}.{}.{}.{}/32".format(*a.packed)  # half of with_prefixlen's cost
    text = a.with_prefixlen
    return text if text.endswith(_HOST_SUFFIX[a.version]) else str(a.network)


_HOST_SUFFIX = {4: "/32", 6: "/128"}


def _peer_specs(peer: Peer) -> list[WgPeerSpec]:
    def allowed(addrs: tuple[IPInterface, ...]) -> tuple[str, ...]:
        if len(addrs) == 1:  # nearly every peer: no generator, no sort
            return (_network_text(addrs[0]),)
        return tuple(sorted(_network_text(a) for a in addrs))

    # No persistent keepalive from the gateway's side: `peer.keepalive` is the client's
    # setting (its config keeps its NAT mapping open). On the gateway it would make WireGuard
    # try a handshake every 5 s, forever, with each peer that never connected (issue 9.4).
    specs = [WgPeerSpec(peer.public_key, peer.psk, allowed(peer.addresses), None)]
    if peer.retiring is not None:  # the old key keeps working during the grace period
        old = peer.retiring
        specs.append(WgPeerSpec(old.public_key, old.psk, allowed(old.addresses), None))
    return specs


def _device(iface: Interface, state: State) -> WgDeviceSpec:
    tenants = {t.name for t in state.tenants_of(iface.name)}
    return device_spec(iface, [p for p in state.peers if p.tenant in tenants])


def device_spec(iface: Interface, peers: Iterable[Peer]) -> WgDeviceSpec:
    """The WireGuard device with these peers (all of its tenants', or one peer's for a
    one-peer reconcile)."""
    specs = [s for p in peers for s in _peer_specs(p)]
    return WgDeviceSpec(
        iface.name,
        iface.private_key,
        iface.listen_port,
        tuple(sorted(specs, key=lambda s: s.public_key)),
    )


def _default_route(t: Tenant, v: int, facts: HostFacts, floating: bool = False) -> RouteSpec | None:
    egress = t.egress_ip(v)
    if egress is None:
        return None  # no egress in this family: the family fails closed (unreachable rule)
    main = facts.default_routes.get(v)
    dev = t.uplink or (main.dev if main else None)
    if dev is None:
        raise ValidationError(
            f"tenant {t.name}", f"no --uplink and no IPv{v} default route in the main table"
        )
    if dev not in facts.links:
        raise ValidationError(f"tenant {t.name}", f"uplink {dev} does not exist on this host")
    via = t.via_ip(v)
    gateway = str(via) if via else (main.gateway if main and main.dev == dev else None)
    # No `src` for a floating egress: the kernel refuses a route whose src is not local and
    # deletes it when the address goes, and on a standby keepalived has not added it. SNAT
    # sets the source of forwarded packets either way; `src` only serves the host's own.
    return RouteSpec(v, t.table, "default", dev, gateway, None if floating else str(egress))


def pool_routes(t: Tenant) -> list[RouteSpec]:
    """The routes back to the tenant's peers, one per pool, in the tenant's table."""
    return [RouteSpec(pool.version, t.table, str(pool), t.interface) for pool in t.pools]


def _tenant_routes(t: Tenant, facts: HostFacts, floating: bool = False) -> list[RouteSpec]:
    routes = pool_routes(t)
    for pool in t.pools:
        default = _default_route(t, pool.version, facts, floating)
        if default:
            routes.append(default)
    return routes


def _egress_addresses(t: Tenant, facts: HostFacts) -> list[AddrSpec]:
    out = []
    for ip in t.egress:  # none is on the host already: core/conflicts.py refused those
        default = _default_route(t, ip.version, facts)
        assert default is not None  # the tenant has an egress in this family
        out.append(AddrSpec(default.dev, f"{ip}/{ip.max_prefixlen}", egress=True))
    return out


def compile_state(state: State, facts: HostFacts) -> Desired:
    floating = ha.floating_egress(state)  # keepalived's to add and remove, not wggw's
    conflicts.check(state.tenants, facts, floating)  # before anything is planned
    addresses: set[AddrSpec] = set()
    routes: set[RouteSpec] = set()
    for t in state.tenants:
        floats = bool(floating) and any(str(ip) in floating for ip in t.egress)
        addresses.update(AddrSpec(t.interface, str(gateway_address(p))) for p in t.pools)
        if not floats:
            addresses.update(_egress_addresses(t, facts))
        routes.update(_tenant_routes(t, facts, floats))
    rules: set[RuleSpec] = set()
    families = {p.version for t in state.tenants for p in t.pools}
    for v in families:
        having = [t for t in state.tenants if t.pool(v)]
        rules.update(
            ruletree.rules_for(v, [t.table for t in having], [t.interface for t in having])
        )
    return Desired(
        sysctls={SYSCTL_FORWARD[v]: "1" for v in sorted(families)},
        wg={i.name: _device(i, state) for i in state.interfaces},
        links={i.name: LinkSpec(i.name, i.mtu or DEFAULT_MTU) for i in state.interfaces},
        addresses=frozenset(addresses),
        routes=frozenset(routes),
        rules=frozenset(rules),
        nft=render(state),
        tc=_tc_guard(state, routes, facts),
    )


def still_compiles_same(state: State, before: HostFacts, now: HostFacts) -> bool:
    """Would `compile_state(state, now)` give what `compile_state(state, before)` gave (and
    did not raise)? Facts reach compilation three ways: main's default routes (uplink and
    next hop), link names (an uplink must exist) and the egress conflict check. Same default
    routes, no link gone and no conflict now: the same result, without compiling 10,000 peers
    again (the re-observation after apply adds wggw's own links and pool addresses, so the
    facts themselves differ). wggw's own devices may be gone (a killed wireguard-go: the
    repair re-creates it) unless one serves as an uplink: links are read for uplinks only."""
    own = {i.name for i in state.interfaces} - {t.uplink for t in state.tenants}
    if before.default_routes != now.default_routes or not before.links - own <= now.links:
        return False
    floating = ha.floating_egress(state)
    return all(
        conflicts.egress_conflict(t, now, any(str(ip) in floating for ip in t.egress)) is None
        for t in state.tenants
    )


def _tc_guard(state: State, routes: set[RouteSpec], facts: HostFacts) -> frozenset[TcSpec]:
    """The third fail-closed layer (tcguard.py): mark on each interface with tenants, drop at
    each device tenant traffic could leave by: the tenants' uplinks, and main's default-route
    devices (where it goes if the ip rules are gone)."""
    if not state.tenants:
        return frozenset()
    ifaces = {t.interface for t in state.tenants}
    uplinks = {r.dev for r in routes if r.dst == "default"}
    uplinks |= {d.dev for d in facts.default_routes.values()} - ifaces
    return frozenset(
        [TcSpec.wanted(i, INGRESS) for i in ifaces] + [TcSpec.wanted(u, EGRESS) for u in uplinks]
    )


def empty() -> Desired:
    """The desired state of `down`: nothing of wggw's on the host."""
    return compile_state(State(), HostFacts())
