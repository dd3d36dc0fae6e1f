"""core/placement.py: which tenants, interfaces and peers run on which gateway."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from wggw.core.keys import Secret
from wggw.core.model import Gateway, Interface, Peer, State, Tenant
from wggw.core.placement import interface_gateways, on_gateway, tenant_gateways

KEY = Secret("a" * 43 + "=")


def _iface(name: str, *gateways: str) -> Interface:
    return Interface(name, 51820, "gw.example:51820", KEY, name + "pub", gateways=gateways)


def _tenant(name: str, iface: str, n: int, **kw) -> Tenant:
    return Tenant(
        name,
        iface,
        (ipaddress.ip_network(f"10.{n}.0.0/24"),),
        (ipaddress.ip_address(f"203.0.113.{n}"),),
        60000 + n,
        **kw,
    )


def _peer(tenant: str) -> Peer:
    return Peer(tenant, "p", tenant + "key", (ipaddress.ip_interface("10.0.0.2/32"),), 0.0)


def _state() -> State:
    return State(
        interfaces=(_iface("wg0", "a", "b"), _iface("wg1", "c"), _iface("wg2")),
        tenants=(
            _tenant("ha", "wg0", 1),
            _tenant("pinned", "wg0", 2, gateway="c"),
            _tenant("moving", "wg1", 3, moving_to="a"),
            _tenant("local", "wg2", 4),
        ),
        peers=tuple(_peer(t) for t in ("ha", "pinned", "moving", "local")),
        gateways=(
            Gateway("a", uplink="up0", via=(ipaddress.ip_address("203.0.113.254"),)),
            Gateway("b"),
            Gateway("c"),
        ),
    )


def _names(state: State) -> tuple[list[str], list[str], list[str]]:
    return (
        [i.name for i in state.interfaces],
        [t.name for t in state.tenants],
        [p.tenant for p in state.peers],
    )


def test_each_gateway_gets_its_own_part() -> None:
    s = _state()
    assert _names(on_gateway(s, "a")) == (["wg0", "wg1"], ["ha", "moving"], ["ha", "moving"])
    assert _names(on_gateway(s, "b")) == (["wg0"], ["ha"], ["ha"])
    # a pinned tenant brings its interface to its gateway (same key: one client config)
    assert _names(on_gateway(s, "c")) == (
        ["wg0", "wg1"],
        ["pinned", "moving"],
        ["pinned", "moving"],
    )
    assert _names(on_gateway(s, None)) == (["wg2"], ["local"], ["local"])
    assert _names(on_gateway(s, "nosuch")) == ([], [], [])


def test_gateway_defaults_fill_only_what_the_tenant_leaves_unsaid() -> None:
    s = _state()
    ha = on_gateway(s, "a").tenants[0]
    assert ha.uplink == "up0" and [str(v) for v in ha.via] == ["203.0.113.254"]
    own = replace(s.tenants[0], uplink="eth9")
    s2 = replace(s, tenants=(own, *s.tenants[1:]))
    assert on_gateway(s2, "a").tenants[0] == own  # its own uplink: the gateway's next hop is not


def test_placement_sets() -> None:
    s = _state()
    ifaces = {i.name: i for i in s.interfaces}
    assert tenant_gateways(s.tenants[0], ifaces["wg0"]) == {"a", "b"}
    assert tenant_gateways(s.tenants[2], ifaces["wg1"]) == {"c", "a"}
    assert tenant_gateways(s.tenants[3], ifaces["wg2"]) == {None}
    assert interface_gateways(ifaces["wg0"], s) == {"a", "b", "c"}


def test_a_single_host_store_is_unchanged() -> None:
    s = _state()
    local = State(interfaces=(s.interfaces[2],), tenants=(s.tenants[3],), peers=(s.peers[3],))
    assert on_gateway(local, None) == local
