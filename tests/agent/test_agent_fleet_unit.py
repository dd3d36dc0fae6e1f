"""The fleet side of the agent without root: one gateway's cut of the store (fleetview), the
start round and a handed-over peer change of a `--gateway` agent on the in-memory host, its
reports and health, the store's up/down state in the metrics, and the reconnect back-off."""

from __future__ import annotations

import random
from dataclasses import replace

from prometheus_client import generate_latest

from wggw.agent import fleetview
from wggw.agent.fleet import Fleet
from wggw.agent.fleetlisten import BASE, CAP, backoff_delay
from wggw.agent.fleetreport import Reporter
from wggw.agent.loop import Agent
from wggw.agent.metrics import AgentMetrics
from wggw.backends.fake import FakeSystem
from wggw.core.errors import StoreUnavailableError
from wggw.core.model import Gateway
from wggw.core.plan import Observed
from wggw.core.wgtypes import WgDeviceState, WgPeerState
from wggw.ops import objects
from wggw.ops.agentclient import store_id
from wggw.store.sqlite import open_store


def _fleet_store(gw, cli, state_dir) -> None:
    """acme on wg0 (placed on gw1); globex on wg0 too, but pinned to gw2."""
    cli("tenant", "add", "globex", "--pool", "10.20.0.0/24", "--egress", "203.0.113.20")
    gw("peer", "add", "acme/a1")
    gw("peer", "add", "globex/g1")
    with open_store(state_dir) as store, store.transaction() as tx:
        tx.add_gateway(Gateway("gw1", uplink="eth0"))
        tx.add_gateway(Gateway("gw2"))
        tx.update_interface(replace(tx.interface("wg0"), gateways=("gw1",)))
        tx.update_tenant(replace(tx.tenant("globex"), gateway="gw2"))


def _metric(metrics: AgentMetrics, name: str) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing")


def test_a_gateway_sees_only_its_part(gw, cli, state_dir) -> None:
    _fleet_store(gw, cli, state_dir)
    with open_store(state_dir) as store:
        view = fleetview.GatewayStore(store, "gw1")
        state = view.load()
        assert [t.name for t in state.tenants] == ["acme"]
        assert {p.tenant for p in state.peers} == {"acme"}
        assert state.tenants[0].uplink == "eth0"  # the gateway's uplink is its default
        assert fleetview.owns_peer_change(view, "acme")
        assert not fleetview.owns_peer_change(view, "globex")
        assert fleetview.owns_peer_change(store, "globex")  # no gateway: everything
        assert [t.name for t in fleetview.GatewayStore(store, "gw2").load().tenants] == ["globex"]


def test_gateway_agent_applies_reports_and_leaves_other_tenants(gw, cli, state_dir) -> None:
    _fleet_store(gw, cli, state_dir)
    logged: list[tuple[str, dict]] = []

    def log(event: str, **fields) -> None:
        logged.append((event, fields))

    with open_store(state_dir) as store:
        view = fleetview.GatewayStore(store, "gw1")
        metrics = AgentMetrics()
        agent = Agent(view, None, log, metrics, fleet=Fleet(None, "gw1", metrics, log))
        agent.system = system = FakeSystem()
        agent._start()
        keys = {p.tenant: p.public_key for p in store.load().peers}
        device = system.state.wg["wg0"]
        assert keys["acme"] in device.peers and keys["globex"] not in device.peers
        [report] = store.reports()
        assert report.gateway == "gw1" and report.healthy and report.error is None
        assert report.generation == store.generation() == agent.applied_gen
        # A peer change of gw2's tenant handed to this agent: not applied here.
        with store.locked():
            peer = objects.add_peer(store, "globex/g2")
        reply = agent._handle(
            {"op": "peer", "store": store_id(store), "tenant": "globex", "peer": "g2",
             "keys": [peer.public_key]}
        )  # fmt: skip
        assert reply["ok"] and reply["path"] == "elsewhere"
        assert peer.public_key not in system.state.wg["wg0"].peers
        health = agent._handle({"op": "health"})
        assert health["healthy"] and health["uplink"] is None and health["store_up"]
        assert _metric(metrics, "wggw_gateway_healthy") == 1.0


def test_uplink_missing_is_unhealthy(gw, cli, state_dir) -> None:
    _fleet_store(gw, cli, state_dir)
    with open_store(state_dir) as store:
        view = fleetview.GatewayStore(store, "gw1")
        metrics = AgentMetrics()
        fleet = Fleet(None, "gw1", metrics, lambda *a, **k: None)
        fleet.converged = True
        health = fleet.health(FakeSystem(links=("eth1",)), view.load())
        assert not health["healthy"] and health["uplink"] == "uplink eth0 is missing"
        assert _metric(metrics, "wggw_gateway_healthy") == 0.0


def test_store_down_shows_in_metrics_and_stops_reports(gw, cli, state_dir) -> None:
    _fleet_store(gw, cli, state_dir)
    with open_store(state_dir) as store:
        view = fleetview.GatewayStore(store, "gw1")
        metrics = AgentMetrics()
        fleet = Fleet(None, "gw1", metrics, lambda *a, **k: None)
        assert _metric(metrics, "wggw_store_up") == 1.0
        fleet.store_failed(StoreUnavailableError("PostgreSQL wggw on /run: connection refused"))
        assert _metric(metrics, "wggw_store_up") == 0.0 and fleet.store_down
        assert _metric(metrics, "wggw_store_errors_total") == 1.0
        fleet.report(view, FakeSystem(), view.load(), 3)  # a heartbeat
        assert store.reports() == []  # nothing written while the store is down
        fleet.round_done(view, FakeSystem(), view.load(), 4, None)
        assert _metric(metrics, "wggw_store_up") == 1.0  # a round went through: it is back
        assert [r.generation for r in store.reports()] == [4]


def test_peer_reports_carry_only_changes() -> None:
    def observed(rx: int) -> Observed:
        peers = {
            "k1": WgPeerState("k1", None, (), endpoint="192.0.2.7:4000", last_handshake=1e9),
            "k2": WgPeerState("k2", None, (), rx_bytes=rx),
        }
        return Observed(wg={"wg0": WgDeviceState("wg0", None, 51820, peers)})

    reporter = Reporter("gw1")
    first = reporter.changed_peers(observed(0))
    assert {p.public_key for p in first} == {"k1", "k2"}
    k1 = next(p for p in first if p.public_key == "k1")
    assert k1.endpoint == "192.0.2.7:4000" and k1.latest_handshake == 1e9
    assert next(p for p in first if p.public_key == "k2").latest_handshake is None
    reporter.written_ok(first)
    assert reporter.changed_peers(observed(0)) == []
    assert [p.public_key for p in reporter.changed_peers(observed(100))] == ["k2"]
    assert reporter.changed_peers(None) == []


def test_reconnect_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(0) == 0.0
    rng = random.Random(1)
    for n in range(1, 30):
        d = backoff_delay(n, rng)
        ceiling = min(CAP, BASE * 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    spread = {round(backoff_delay(8, random.Random(seed)), 6) for seed in range(20)}
    assert len(spread) > 10  # agents coming back together do not retry in lockstep


def test_store_delta_is_the_touched_peers_only(gw, cli, state_dir) -> None:
    from wggw.agent import onepeer, storedelta
    from wggw.core.plan import RemovePeer, UpsertPeer

    _fleet_store(gw, cli, state_dir)
    with open_store(state_dir) as store:
        view = fleetview.GatewayStore(store, "gw1")
        old = view.load()
        live = onepeer.live_tenants(old)
        added = objects.add_peer(store, "acme/a2")
        new = view.load()
        [change] = storedelta.peer_delta(old, new, live)
        assert isinstance(change, UpsertPeer) and change.peer.public_key == added.public_key
        assert storedelta.peer_delta(new, new, live) == []
        objects.add_peer(store, "globex/g9")  # another gateway's tenant: not in this cut
        assert storedelta.peer_delta(new, view.load(), live) == []
        objects.remove_peer(store, "acme/a2")
        [change] = storedelta.peer_delta(new, view.load(), live)
        assert isinstance(change, RemovePeer) and change.public_key == added.public_key
        assert storedelta.peer_delta(old, new, {}) is None  # acme not live: the full round
        cli("tenant", "add", "initech", "--pool", "10.30.0.0/24", "--egress", "203.0.113.30")
        assert storedelta.peer_delta(old, view.load(), live) is None  # not peers only


def test_listen_attempts_block_briefly_unless_the_url_says() -> None:
    import psycopg.conninfo

    from wggw.agent.fleetlisten import CONNECT_TIMEOUT, _short

    short = psycopg.conninfo.conninfo_to_dict(_short("postgresql://wggw@db.example.net/wggw"))
    assert short["connect_timeout"] == CONNECT_TIMEOUT and short["host"] == "db.example.net"
    url = "postgresql://wggw@db.example.net/wggw?connect_timeout=7"
    assert _short(url) == url
