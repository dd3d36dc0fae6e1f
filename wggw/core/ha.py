"""High availability (issue 14), pure: which interfaces and tenants float between gateways, and
the VRRP instances (keepalived) one gateway runs for them.

An interface listed on two or more gateways (`Interface.gateways`, by priority) runs fully on
each; its clients' endpoint address and its tenants' egress IPs are *floating*: keepalived
holds them on the active gateway and moves them on failure. wggw never adds or removes a
floating address itself (desired.py leaves them out, conflicts.py accepts them on the host),
so the two owners never fight. A tenant pinned to one gateway (or moving) does not float.

One VRRP instance per HA interface. Its virtual router id is derived from the interface's
listen port, which is unique in the store: `1 + port % 255`. It is stable (adding or removing
another interface never renumbers a live instance) and the same on every gateway without any
coordination; two HA interfaces whose ports are equal modulo 255 are refused by name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wggw.core.errors import ValidationError
from wggw.core.hostfacts import HostFacts
from wggw.core.model import Interface, IPAddress, IPInterface, State, Tenant

INSTANCE_PREFIX = "wggw_"
TOP_PRIORITY = 200  # the first gateway of an interface; each next one 10 lower (255: reserved)
PRIORITY_STEP = 10
FAILBACK = ("preempt", "nopreempt")


def is_ha(iface: Interface | None) -> bool:
    return iface is not None and len(iface.gateways) >= 2


def floats(t: Tenant, iface: Interface | None) -> bool:
    """Do `t`'s egress IPs float between gateways (keepalived's, not wggw's, to add)?"""
    return is_ha(iface) and t.gateway is None and t.moving_to is None


def floating_egress(state: State) -> frozenset[str]:
    """The egress IPs (text) keepalived holds on this state's gateways."""
    ifaces = {i.name: i for i in state.interfaces}
    return frozenset(
        str(ip) for t in state.tenants if floats(t, ifaces.get(t.interface)) for ip in t.egress
    )


def floating_addresses(state: State) -> frozenset[str]:
    """Every address keepalived moves for this state: floating egress IPs and HA endpoints."""
    endpoints = (endpoint_ip(i) for i in state.interfaces if is_ha(i))
    return floating_egress(state) | {str(ip) for ip in endpoints if ip is not None}


def vrid(iface: Interface) -> int:
    return 1 + iface.listen_port % 255


def instance_name(iface: Interface) -> str:
    return INSTANCE_PREFIX + iface.name


def interface_of(instance: str) -> str | None:
    """The wggw interface a keepalived instance name stands for (None: not one of ours)."""
    return instance.removeprefix(INSTANCE_PREFIX) if instance.startswith(INSTANCE_PREFIX) else None


def priority(iface: Interface, gateway: str) -> int:
    return TOP_PRIORITY - PRIORITY_STEP * iface.gateways.index(gateway)


@dataclass(frozen=True)
class Vip:
    cidr: str  # a host address: "203.0.113.10/32", "2001:db8::10/128"
    dev: str

    @property
    def version(self) -> int:
        return ipaddress.ip_interface(self.cidr).version


@dataclass(frozen=True)
class VrrpInstance:
    name: str
    interface: str  # the device VRRP advertisements go out on
    vrid: int
    priority: int
    vips: tuple[Vip, ...]
    nopreempt: bool

    @property
    def advertised(self) -> tuple[Vip, ...]:
        """The addresses in the advertisements (one family: VRRP instances are per family;
        the first address's); the other family rides along as 'excluded' addresses, which
        keepalived adds and removes with the instance all the same."""
        first = self.vips[0].version if self.vips else 4
        return tuple(v for v in self.vips if v.version == first)

    @property
    def excluded(self) -> tuple[Vip, ...]:
        return tuple(v for v in self.vips if v not in self.advertised)


def instances(
    state: State,
    gateway: str | None,
    facts: HostFacts,
    connected: Mapping[str, Sequence[IPInterface]],
    failback: str = "preempt",
) -> list[VrrpInstance]:
    """The VRRP instances `gateway` runs: one per HA interface that lists it. `connected` is
    each device's addresses with their prefixes: the endpoint address goes on the device whose
    subnet holds it (the clients' side), else on the advertising device."""
    if failback not in FAILBACK:
        raise ValidationError("ha-failback", f"{failback!r}: want preempt or nopreempt")
    out: list[VrrpInstance] = []
    seen: dict[int, str] = {}
    for iface in sorted(state.interfaces, key=lambda i: i.name):
        if not is_ha(iface) or gateway not in iface.gateways:
            continue
        rid = vrid(iface)
        if rid in seen:
            raise ValidationError(
                f"interface {iface.name}",
                f"VRRP id {rid} (from listen port {iface.listen_port}) is also interface "
                f"{seen[rid]}'s: give one of them another listen port",
            )
        seen[rid] = iface.name
        tenants = [t for t in state.tenants_of(iface.name) if floats(t, iface)]
        advert = _advert_dev(iface, tenants, facts)
        vips = _endpoint_vips(iface, advert, connected) + [
            Vip(f"{ip}/{ip.max_prefixlen}", _uplink(t, ip.version, facts) or advert)
            for t in tenants
            for ip in t.egress
        ]
        out.append(
            VrrpInstance(
                instance_name(iface),
                advert,
                rid,
                priority(iface, gateway),
                tuple(dict.fromkeys(vips)),
                failback == "nopreempt",
            )
        )
    return out


def _uplink(t: Tenant, version: int, facts: HostFacts) -> str | None:
    main = facts.default_routes.get(version)
    return t.uplink or (main.dev if main else None)


def _advert_dev(iface: Interface, tenants: list[Tenant], facts: HostFacts) -> str:
    """Where the gateways of `iface` meet: its tenants' uplink (v4 first), else main's."""
    for t in tenants:
        for v in (4, 6):
            dev = _uplink(t, v, facts) if t.egress_ip(v) else None
            if dev:
                return dev
    for v in (4, 6):
        if v in facts.default_routes:
            return facts.default_routes[v].dev
    raise ValidationError(
        f"interface {iface.name}", "no uplink for its VRRP advertisements (no default route)"
    )


def _endpoint_vips(
    iface: Interface, advert: str, connected: Mapping[str, Sequence[IPInterface]]
) -> list[Vip]:
    ip = endpoint_ip(iface)
    if ip is None:
        return []  # a DNS name: the operator points it at an address that floats
    dev = next(
        (d for d, addrs in sorted(connected.items()) for a in addrs if ip in a.network),
        advert,
    )
    return [Vip(f"{ip}/{ip.max_prefixlen}", dev)]


def endpoint_ip(iface: Interface) -> IPAddress | None:
    """The endpoint's address when it is an IP literal ("192.0.2.1:51820", "[2001:db8::1]:p")."""
    host = iface.endpoint.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
