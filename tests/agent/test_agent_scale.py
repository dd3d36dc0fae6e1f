"""What keeps the idle agent cheap at 10,000s of peers, against the in-memory host: a resync
with the store unchanged reuses the last round's compiled desired state (and still
repairs drift; a store change is compiled afresh), and a /metrics scrape reads only the
WireGuard devices, not a full observe-and-plan."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import generate_latest

from wggw.agent import apply
from wggw.agent.loop import Agent
from wggw.agent.metrics import AgentMetrics
from wggw.backends.fake import FakeSystem
from wggw.core import desired as desired_mod
from wggw.core.plan import AddRule
from wggw.store.sqlite import open_store


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts compile_state calls (the cost that grows with the peers)."""
    calls: list[int] = []
    real = desired_mod.compile_state

    def counting(state, facts):
        calls.append(len(state.peers))
        return real(state, facts)

    monkeypatch.setattr(desired_mod, "compile_state", counting)
    return calls


def _agent(store, system, monkeypatch) -> Agent:
    monkeypatch.setattr(apply, "system_for", lambda backend: system)
    return Agent(store, None, lambda *a, **k: None, AgentMetrics())


def test_resync_reuses_the_compiled_state_and_still_repairs(
    gw, state_dir, monkeypatch, compiles
) -> None:
    gw("peer", "add", "acme/p0")
    system = FakeSystem()
    with open_store(state_dir) as store:
        agent = _agent(store, system, monkeypatch)
        agent._reconcile_locked({"resync"}, 0.0)  # the first round converges the fake host
        assert system.state.wg["wg0"].peers and compiles
        before = len(compiles)
        agent._reconcile_locked({"resync"}, 0.0)
        assert len(compiles) == before  # nothing compiled again
        # drift between two rounds is still seen and repaired with the kept desired state
        system.state = replace(system.state, rules=frozenset())
        agent._reconcile_locked({"drift"}, 0.0)
        assert system.state.rules and len(compiles) == before
    gw("peer", "add", "acme/p1")  # a store change: read and compiled afresh, and applied
    with open_store(state_dir) as store:
        agent.store = store
        agent._reconcile_locked({"store"}, 0.0)
        assert len(system.state.wg["wg0"].peers) == 2 and len(compiles) > before


class NoFullObserve(FakeSystem):
    def observe(self):
        raise AssertionError("a scrape must not observe (and plan) everything")


def test_scrape_reads_only_the_devices_and_reports_the_last_rounds_drift(gw, state_dir) -> None:
    gw("peer", "add", "acme/p0")
    gw("peer", "add", "acme/p1")
    with open_store(state_dir) as store:
        state = store.load()
    system = FakeSystem()
    apply.repair(state, system, lambda c: False)
    scraped = NoFullObserve()
    scraped.state = system.state
    metrics = AgentMetrics()
    drift = [AddRule(r) for r in list(system.state.rules)[:2]]
    metrics.live.update(state, lambda: scraped, drift)
    text = generate_latest(metrics.registry).decode()
    assert 'wggw_tenant_peers{tenant="acme"} 2.0' in text
    assert 'wggw_peer_configured{interface="wg0",peer="p1",tenant="acme"} 1.0' in text
    assert "wggw_drift_changes 2.0" in text
    metrics.live.update(state, lambda: scraped)  # the next round converged
    assert "wggw_drift_changes 0.0" in generate_latest(metrics.registry).decode()


def test_the_heap_is_settled_only_when_the_kept_state_changes(gw, state_dir, monkeypatch):
    """A drift repair writes an audit record (a new generation) but keeps the same state and
    compiled desired state: no full collection for it; a store change brings new ones."""
    from wggw.agent import loop

    settled: list[int] = []
    monkeypatch.setattr(loop, "_settle_heap", lambda: settled.append(1))
    gw("peer", "add", "acme/p0")
    system = FakeSystem()
    with open_store(state_dir) as store:
        agent = _agent(store, system, monkeypatch)
        agent._reconcile_locked({"resync"}, 0.0)
        assert len(settled) == 1
        gen = agent.compiled[0]
        system.state = replace(system.state, rules=frozenset())
        agent._reconcile_locked({"drift"}, 0.0)
        assert system.state.rules and agent.compiled[0] > gen  # repaired, audited
        assert len(settled) == 1
    gw("peer", "add", "acme/p1")
    with open_store(state_dir) as store:
        agent.store = store
        agent._reconcile_locked({"store"}, 0.0)
        assert len(settled) == 2
