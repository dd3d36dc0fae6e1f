"""The egress port-usage collector's bounds without a kernel: one dump serves the scrapes of
its reuse window, a slow dump widens the window (dumps stay a small share of a core), a new
egress IP is counted at once, and a table it cannot read leaves the entries series out."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wggw.agent import egress_metrics
from wggw.backends import conntrack


def _state(*egress: str):
    return SimpleNamespace(tenants=[SimpleNamespace(name="acme", egress=egress)])


def _entries(collector, state) -> dict:
    fams = {f.name: f for f in collector.families(state)}
    return {s.labels["egress"]: s.value for s in fams["wggw_egress_conntrack_entries"].samples}


def test_dumps_are_rationed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, dumps = [100.0], []

    def dump(addresses, limit):
        dumps.append(addresses)
        clock[0] += 2.0  # this dump took 2 s
        return dict.fromkeys(addresses, len(dumps)), False

    monkeypatch.setattr(egress_metrics.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(conntrack, "count_by_reply_dst", dump)
    collector = egress_metrics.EgressPorts(min_interval=5.0, duty=20.0)
    assert _entries(collector, _state("203.0.113.10")) == {"203.0.113.10": 1}
    clock[0] += 30.0  # < 20 x 2 s since the dump began: reused
    assert _entries(collector, _state("203.0.113.10")) == {"203.0.113.10": 1}
    assert _entries(collector, _state("203.0.113.10", "2001:db8::1")) == {
        "203.0.113.10": 2,
        "2001:db8::1": 2,
    }  # a new egress IP: counted now
    clock[0] += 41.0
    assert _entries(collector, _state("203.0.113.10", "2001:db8::1"))["203.0.113.10"] == 3
    assert len(dumps) == 3


def test_unreadable_table_leaves_entries_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(addresses, limit):
        raise conntrack.ConntrackError("conntrack dump: Operation not permitted")

    monkeypatch.setattr(conntrack, "count_by_reply_dst", fail)
    fams = {f.name: f for f in egress_metrics.EgressPorts().families(_state("203.0.113.10"))}
    assert fams["wggw_egress_conntrack_entries"].samples == []
    assert [s.value for s in fams["wggw_egress_ports_available"].samples] == [64512]
