"""What an operator sees of a fleet (pure): each gateway with what is placed on it and what
its agent last reported (lag, health, error, version, report age), and `status --fleet`'s
aggregate of every gateway's and every peer's reports. Field names are part of the JSON
contract documented in the README ("JSON fields")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wggw.core import fleet
from wggw.core.model import Gateway, State
from wggw.core.placement import tenant_gateways
from wggw.core.status import ACTIVE_WINDOW
from wggw.core.timefmt import iso


def placed_on(state: State, gateway: str) -> dict[str, list[str]]:
    """What runs on `gateway`: interfaces it is active for (first in their list), those it
    stands by for, tenants placed on it, tenants moving to it."""
    ifaces = {i.name: i for i in state.interfaces}
    return {
        "interfaces": [i.name for i in state.interfaces if i.gateways[:1] == (gateway,)],
        "standby": [i.name for i in state.interfaces if gateway in i.gateways[1:]],
        "tenants": [
            t.name for t in state.tenants if gateway in tenant_gateways(t, ifaces.get(t.interface))
        ],
        "moving_in": [t.name for t in state.tenants if t.moving_to == gateway],
    }


def gateway_view(
    state: State, gw: Gateway, report: fleet.GatewayReport | None, generation: int, now: float
) -> dict[str, Any]:
    """One gateway: its settings, what is placed on it, and its agent's last report."""
    age = None if report is None else round(max(0.0, now - report.reported_at), 1)
    return {
        "name": gw.name,
        "uplink": gw.uplink,
        "via": [str(v) for v in gw.via],
        **placed_on(state, gw.name),
        "health": fleet.health(report, now),
        "generation": None if report is None else report.generation,
        "store_generation": generation,
        "lag": fleet.lag(report, generation),
        "error": None if report is None else report.error,
        "version": None if report is None else report.version,
        "host": None if report is None else report.host,
        "pid": None if report is None else report.pid,
        "reported_at": None if report is None else iso(report.reported_at),
        "report_age_seconds": age,
        "converged_at": None if report is None else iso(report.converged_at),
        "created_at": iso(gw.created_at or None),
    }


def gateway_views(
    state: State, reports: Iterable[fleet.GatewayReport], generation: int, now: float
) -> list[dict[str, Any]]:
    by_name = {r.gateway: r for r in reports}
    return [gateway_view(state, g, by_name.get(g.name), generation, now) for g in state.gateways]


def fleet_status(
    state: State,
    reports: Iterable[fleet.GatewayReport],
    peer_reports: Iterable[fleet.PeerReport],
    generation: int,
    now: float,
) -> dict[str, Any]:
    """`status --fleet`: every gateway, every peer as the gateways saw it (the newest
    handshake wins; bytes summed over the gateways), per-tenant totals, and `converged`:
    every gateway that runs something is healthy and not behind."""
    gateways = gateway_views(state, reports, generation, now)
    peers = _peers(state, peer_reports, now)
    ifaces = {i.name: i for i in state.interfaces}
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for p in peers:
        by_tenant.setdefault(p["tenant"], []).append(p)
    tenants = []
    for t in state.tenants:
        mine = by_tenant.get(t.name, [])
        placed = tenant_gateways(t, ifaces.get(t.interface))
        tenants.append(
            {
                "name": t.name,
                "interface": t.interface,
                "gateways": sorted(g for g in placed if g is not None),
                "gateway": t.gateway,
                "moving_to": t.moving_to,
                "peers": len(mine),
                "active_peers": sum(1 for p in mine if p["active"]),
                "rx_bytes": sum(p["rx_bytes"] for p in mine),
                "tx_bytes": sum(p["tx_bytes"] for p in mine),
            }
        )
    busy = [g for g in gateways if g["interfaces"] or g["standby"] or g["tenants"]]
    return {
        "generation": generation,
        "converged": all(g["health"] == "healthy" and g["lag"] == 0 for g in busy),
        "gateways": gateways,
        "tenants": tenants,
        "peers": peers,
    }


def _peers(
    state: State, peer_reports: Iterable[fleet.PeerReport], now: float
) -> list[dict[str, Any]]:
    seen: dict[str, list[fleet.PeerReport]] = {}
    for r in peer_reports:
        seen.setdefault(r.public_key, []).append(r)
    out = []
    for p in state.peers:
        mine = seen.get(p.public_key, [])
        best = max(mine, key=_newest, default=None)
        hs = (best.latest_handshake or 0) if best else 0
        out.append(
            {
                "name": p.name,
                "tenant": p.tenant,
                "public_key": p.public_key,
                "gateway": best.gateway if best and hs else None,
                "reported_by": sorted(r.gateway for r in mine),
                "endpoint": best.endpoint if best else None,
                "latest_handshake": iso(hs or None),
                "handshake_age_seconds": round(now - hs, 1) if hs else None,
                "active": bool(hs and now - hs < ACTIVE_WINDOW),
                "rx_bytes": sum(r.rx_bytes for r in mine),
                "tx_bytes": sum(r.tx_bytes for r in mine),
            }
        )
    return out


def _newest(r: fleet.PeerReport) -> tuple[float, bool]:
    return (r.latest_handshake or 0.0, r.endpoint is not None)
