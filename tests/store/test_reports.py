"""Agents' reports and gateways on every store: upserted without a generation bump or an
audit record, read back as written, gone with their gateway; gateways round-trip."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from wggw.core.fleet import GatewayReport, PeerReport, health, lag, last_endpoints
from wggw.core.model import Gateway
from wggw.ops.state import open_existing

REPORT = GatewayReport(
    gateway="gw1",
    generation=7,
    healthy=True,
    error=None,
    version="1.0",
    host="h1",
    pid=42,
    started_at=100.0,
    reported_at=110.0,
    converged_at=109.5,
    details={"store": "up"},
)


def test_reports_round_trip_without_a_generation_bump(kind, gw, state_dir) -> None:
    peers = [
        PeerReport("gw1", "k1", "198.51.100.11:4000", 105.0, 10, 20, 110.0),
        PeerReport("gw1", "k2", None, None, 0, 0, 110.0),
    ]
    with open_existing(state_dir) as store:
        with store.transaction() as tx:
            tx.add_gateway(Gateway("gw1", "up0", (ipaddress.ip_address("203.0.113.254"),), 1.0))
        gen, events = store.generation(), len(store.events())
        store.write_report(REPORT, peers)
        store.write_report(replace(REPORT, generation=8, healthy=False, error="boom"))
        store.write_report(REPORT, [replace(peers[0], endpoint="198.51.100.12:4001")])
        assert store.generation() == gen and len(store.events()) == events
        assert store.reports() == [REPORT]
        got = store.peer_reports("gw1")
        assert [p.endpoint for p in got] == ["198.51.100.12:4001", None]
        assert store.load().gateways[0].via == (ipaddress.ip_address("203.0.113.254"),)
        with store.transaction() as tx:
            tx.remove_gateway("gw1")
        assert store.reports() == [] and store.peer_reports() == []
        assert store.load().gateways == ()


def test_fleet_readings() -> None:
    assert health(None, 0.0) == "missing"
    assert health(REPORT, 111.0) == "healthy"
    assert health(replace(REPORT, healthy=False), 111.0) == "unhealthy"
    assert health(REPORT, 110.0 + 16) == "stale"
    assert lag(REPORT, 10) == 3 and lag(None, 10) is None
    old = PeerReport("a", "k", "198.51.100.1:1", 5.0)
    new = PeerReport("b", "k", "198.51.100.2:2", 9.0)
    assert last_endpoints([new, old, PeerReport("c", "k", None, 99.0)]) == {"k": new}
