"""The agent records its repairs in the store's audit chain (kind, objects, trigger), and its
own record does not make it wake for a "store change": once against the in-memory host
(backends/fake.py), once in the real lab (a real fault, the real agent process)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

from wggw.agent import apply
from wggw.agent.backoff import Backoff
from wggw.agent.loop import STORE_POLL, Agent
from wggw.agent.metrics import AgentMetrics
from wggw.backends.fake import FakeSystem
from wggw.core import audit
from wggw.store.sqlite import open_store


def _repairs(store) -> list[audit.Record]:
    rows, _ = store.audit_rows()
    return [r for r in map(audit.record_of, rows) if r.kind == "agent.repair"]


def test_repair_is_recorded_and_does_not_wake_the_agent(gw, state_dir, monkeypatch) -> None:
    gw("peer", "add", "acme/alice")
    system = FakeSystem()
    monkeypatch.setattr(apply, "system_for", lambda backend: system)
    logged: list[tuple[str, dict]] = []
    with open_store(state_dir) as store:
        log = lambda event, **f: logged.append((event, f))  # noqa: E731
        agent = Agent(store, None, log, AgentMetrics(), backoff=Backoff(limit=1, base=60.0))
        with store.locked():
            agent._reconcile_locked({"store"}, time.monotonic())  # the operator's intent
        assert _repairs(store) == [] and agent.applied_gen == store.generation()
        gen = store.generation()
        rules = sorted(system.state.rules, key=repr)
        system.state = replace(system.state, rules=frozenset(rules[1:]))  # drift
        with store.locked():
            agent._reconcile_locked({"drift"}, time.monotonic())
        (rec,) = _repairs(store)
        assert rec.details["kind"] == "rule" and rec.details["trigger"] == "drift"
        assert rec.details["count"] == 1 and rec.subject == rec.details["objects"][0]
        assert "rule" in rec.subject and rec.uid is not None
        # the record moved the generation; the agent took it as its own, so no store round
        assert store.generation() == gen + 1 == agent.applied_gen
        assert agent._store_generation() == agent.applied_gen
        rows, head = store.audit_rows()
        assert audit.verify(rows, head) is None
        # nothing drifted: nothing repaired, nothing recorded
        with store.locked():
            agent._reconcile_locked({"resync"}, time.monotonic())
        assert len(_repairs(store)) == 1 and store.generation() == gen + 1
        # a round that repairs one kind and holds another back (contested) ends early: its
        # record must still count as seen, or the next poll would start a "store" round,
        # which the back-off does not ration
        for _ in range(2):
            agent.backoff.record("route", time.monotonic())
        routes = sorted(system.state.routes, key=repr)
        rules = sorted(system.state.rules, key=repr)
        system.state = replace(
            system.state, rules=frozenset(rules[1:]), routes=frozenset(routes[1:])
        )
        with store.locked():
            agent._reconcile_locked({"drift"}, time.monotonic())
        assert any(event == "contested" and f["kind"] == "route" for event, f in logged)
        assert [r.details["kind"] for r in _repairs(store)] == ["rule", "rule"]
        assert store.generation() == gen + 2 == agent.applied_gen


def _count(metrics: str, trigger: str) -> float:
    m = re.search(
        rf'^wggw_reconcile_duration_seconds_count\{{trigger="{trigger}"\}} (\S+)$', metrics, re.M
    )
    return float(m.group(1)) if m else 0.0


def _delete_an_owned_rule(lab) -> None:
    for line in lab.gw.ip("-4", "rule", "show").stdout.splitlines():
        pref, _, rest = line.partition(":")
        if 10000 <= int(pref) <= 31999 and "lookup 600" in rest:
            lab.gw.ip("-4", "rule", "del", "pref", pref)
            return
    raise AssertionError("no wggw rule found")


def test_real_repair_is_in_the_audit_log(agent_lab) -> None:
    lab, gw, agents = agent_lab
    agent = agents[-1]
    before = agent.log().count("converged trigger=drift")
    stores = _count(agent.metrics(), "store")
    _delete_an_owned_rule(lab)
    agent.wait_log("converged trigger=drift", 10.0, before + 1)
    recs = json.loads(lab.wggw("audit", "--json").stdout)
    repair = [r for r in recs if r["kind"] == "agent.repair"][-1]
    assert repair["details"]["kind"] == "rule" and repair["details"]["trigger"] == "drift"
    assert repair["command"].startswith("wggw agent") and repair["uid"] == 0
    assert "rule" in repair["subject"]
    assert lab.wggw("audit", "verify").stdout.startswith("audit chain intact")
    time.sleep(3 * STORE_POLL)  # polls that would see the record's generation as new
    assert _count(agent.metrics(), "store") == stores, "the agent woke for its own record"
