"""Build the `status` report (pure): per-peer handshake, endpoint and traffic, per-tenant
totals, and drift (the changes `apply` would make). Field names are part of the JSON
contract documented in the README."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from wggw.core.timefmt import iso

if TYPE_CHECKING:
    from wggw.core.model import State
    from wggw.core.plan import Change, Observed


class Reconciled(Protocol):
    """What `build` reads of a reconcile result (ops' type: the core does not import ops)."""

    @property
    def observed(self) -> Observed: ...
    @property
    def changes(self) -> list[Change]: ...


ACTIVE_WINDOW = 180.0  # a handshake within 3 minutes: WireGuard re-keys every 2


def build(
    state: State, result: Reconciled, now: float, paths: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    tenant_iface = {t.name: t.interface for t in state.tenants}
    seen = {}
    for dev in result.observed.wg.values():
        for key, peer in dev.peers.items():
            seen[key] = (dev.name, peer)
    peers: list[dict[str, Any]] = []
    for p in state.peers:
        name, live = seen.get(p.public_key, (None, None))
        hs = live.last_handshake if live else 0.0
        peers.append(
            {
                "name": p.name,
                "tenant": p.tenant,
                "interface": tenant_iface.get(p.tenant),
                "public_key": p.public_key,
                "configured": live is not None,
                "endpoint": live.endpoint if live else None,
                "latest_handshake": iso(hs or None),
                "handshake_age_seconds": round(now - hs, 1) if hs else None,
                "active": bool(hs and now - hs < ACTIVE_WINDOW),
                "rx_bytes": live.rx_bytes if live else 0,
                "tx_bytes": live.tx_bytes if live else 0,
            }
        )
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for entry in peers:  # one pass: a scan per tenant would be tenants x peers
        by_tenant.setdefault(entry["tenant"], []).append(entry)
    tenants = []
    for t in state.tenants:
        mine = by_tenant.get(t.name, [])
        tenants.append(
            {
                "name": t.name,
                "interface": t.interface,
                "peers": len(mine),
                "active_peers": sum(p["active"] for p in mine),
                "rx_bytes": sum(p["rx_bytes"] for p in mine),
                "tx_bytes": sum(p["tx_bytes"] for p in mine),
            }
        )
    return {
        "peers": peers,
        "tenants": tenants,
        "drift": [c.describe() for c in result.changes],
        "paths": list(paths),
    }
