"""The agent's repair and scrape paths against the in-memory host (backends/fake.py): held
kinds stay out of the apply and nothing else is held; a forced nft reload; the per-peer series
cap of the metrics endpoint."""

from __future__ import annotations

from prometheus_client import generate_latest

from wggw.agent import apply
from wggw.agent.backoff import kind_of
from wggw.agent.metrics import AgentMetrics
from wggw.backends.fake import FakeSystem
from wggw.core.plan import ReplaceNft
from wggw.ops import converge
from wggw.store.sqlite import open_store


def _state(gw, state_dir, peers: int):
    for i in range(peers):
        gw("peer", "add", f"acme/p{i}")
    with open_store(state_dir) as store:
        return store.load()


def test_repair_holds_back_only_the_contested_kind(gw, state_dir) -> None:
    state = _state(gw, state_dir, 2)
    system = FakeSystem()
    drained = []
    applied, held, left = apply.repair(
        state, system, lambda c: kind_of(c) == "rule", applied_hook=lambda: drained.append(1)
    )
    assert held and {kind_of(c) for c in held} == {"rule"}
    assert applied and "rule" not in {kind_of(c) for c in applied} and not left and drained
    assert all(not line.startswith("ip rule") and "ip -6 rule" not in line for line in system.log)
    # once the kind may be repaired again, the rest follows and the host matches
    applied, held, left = apply.repair(state, system, lambda c: False)
    assert {kind_of(c) for c in applied} == {"rule"} and not held and not left
    assert converge.compute(state, system).changes == []


def test_reload_nft_when_someone_else_touched_the_table(gw, state_dir) -> None:
    state = _state(gw, state_dir, 1)
    system = FakeSystem()
    apply.repair(state, system, lambda c: False)
    applied, _, _ = apply.repair(state, system, lambda c: False)
    assert applied == []  # nothing to do ...
    applied, _, _ = apply.repair(state, system, lambda c: False, reload_nft=True)
    assert [type(c) for c in applied] == [ReplaceNft]  # ... unless the table was touched


def test_metrics_cap_per_peer_series(gw, state_dir) -> None:
    state = _state(gw, state_dir, 3)
    system = FakeSystem()
    apply.repair(state, system, lambda c: False)
    for cap, per_peer in ((3, True), (2, False), (0, False)):
        metrics = AgentMetrics(max_peers=cap)
        metrics.live.update(state, lambda: system)
        text = generate_latest(metrics.registry).decode()
        assert 'wggw_tenant_peers{tenant="acme"} 3.0' in text
        iface = state.tenants[0].interface
        p0 = f'wggw_peer_configured{{interface="{iface}",peer="p0",tenant="acme"}} 1.0'
        assert (p0 in text) is per_peer, cap
        assert f"wggw_peer_series_enabled {float(per_peer)}" in text
        assert 'wggw_tenant_receive_bytes_total{tenant="acme"} 0.0' in text  # never capped
        assert "wggw_build_info{version=" in text
