"""Which part of the desired state runs on which gateway of a fleet (pure).

An interface runs on the gateways it lists (by priority: the first active, the others
standing by); a tenant runs wherever its interface runs unless it is pinned to one gateway
(`tenant move`), and, while a move is in progress, also on the gateway it moves to. The
gateway name None is the implicit local gateway of a single-host store: everything placed
on no gateway. `on_gateway` cuts a `State` down to one gateway's part, with the gateway's
uplink and next hops as the defaults of its tenants, so the rest of wggw (compile, plan,
converge) never needs to know about fleets.
"""

from __future__ import annotations

from dataclasses import replace

from wggw.core.model import Gateway, Interface, Peer, State, Tenant


def tenant_gateways(t: Tenant, iface: Interface | None) -> frozenset[str | None]:
    """The gateways `t` runs on (None: the implicit local one)."""
    placed: set[str | None] = (
        {t.gateway} if t.gateway is not None else set(iface.gateways if iface else ())
    )
    if t.moving_to is not None:
        placed.add(t.moving_to)
    return frozenset(placed or {None})


def interface_gateways(iface: Interface, state: State) -> frozenset[str | None]:
    """The gateways `iface` runs on: those it lists (or the local one if it lists none) and
    those any of its tenants is placed on."""
    placed: set[str | None] = set(iface.gateways) or {None}
    for t in state.tenants_of(iface.name):
        placed |= tenant_gateways(t, iface)
    return frozenset(placed)


def on_gateway(state: State, gateway: str | None) -> State:
    """The part of `state` that runs on `gateway`, its tenants' uplink and next hops
    defaulted from the gateway's. Unknown gateway: an empty state (it runs nothing)."""
    gw = next((g for g in state.gateways if g.name == gateway), None)
    if gateway is not None and gw is None:
        return State(meta=state.meta)
    ifaces = {i.name: i for i in state.interfaces}
    tenants = tuple(
        _defaults(t, gw)
        for t in state.tenants
        if gateway in tenant_gateways(t, ifaces.get(t.interface))
    )
    names = {t.name for t in tenants}
    used = {t.interface for t in tenants}
    interfaces = tuple(
        i for i in state.interfaces if i.name in used or gateway in (i.gateways or (None,))
    )
    peers = state.peers if len(names) == len(state.tenants) else _peers_of(state, names)
    return State(
        interfaces=interfaces,
        tenants=tenants,
        peers=peers,
        meta=state.meta,
        gateways=(gw,) if gw else (),
    )


def _peers_of(state: State, names: set[str]) -> tuple[Peer, ...]:
    return tuple(p for p in state.peers if p.tenant in names)


def _defaults(t: Tenant, gw: Gateway | None) -> Tenant:
    """The gateway's uplink and next hop for what the tenant leaves unsaid (per family)."""
    if gw is None or t.uplink is not None:  # a tenant's own uplink comes with its own path
        return t
    via = tuple(t.via) + tuple(v for v in gw.via if t.via_ip(v.version) is None)
    return replace(t, uplink=t.uplink or gw.uplink, via=via)
