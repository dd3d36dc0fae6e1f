"""templates/grafana-wggw.json without a server: valid JSON that Grafana imports (a datasource
input DS_PROMETHEUS that every panel and target uses), every panel has a query, and every
wggw metric a query names is one the agent exports (scraped from its registry over the
in-memory host). The queries themselves run against a real Prometheus in
test_prometheus_server.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

from wggw.agent import apply
from wggw.agent.metrics import AgentMetrics
from wggw.backends.fake import FakeSystem
from wggw.store.sqlite import open_store

DASHBOARD = Path(__file__).resolve().parents[2] / "templates" / "grafana-wggw.json"
DS = "${DS_PROMETHEUS}"


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def targets(dash: dict) -> list[tuple[dict, dict]]:
    return [(p, t) for p in dash["panels"] for t in p.get("targets", ())]


def test_dashboard_is_importable_and_every_panel_has_a_query() -> None:
    dash = load()
    assert isinstance(dash["schemaVersion"], int) and dash["uid"] and dash["title"]
    inputs = {i["name"]: i for i in dash["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == DS, panel["title"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no target"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["expr"].strip() and t["datasource"]["uid"] == DS, panel["title"]
    for var in dash["templating"]["list"]:
        assert var["datasource"]["uid"] == DS
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("traffic", "active peers", "handshake", "repairs", "contested", "latency"):
        assert topic in titles, topic
    assert "port" in titles


def test_every_metric_named_is_exported(gw, state_dir) -> None:
    gw("peer", "add", "acme/p0")
    with open_store(state_dir) as store:
        state = store.load()
    system = FakeSystem()
    apply.repair(state, system, lambda c: False)
    metrics = AgentMetrics()
    metrics.live.update(state, lambda: system)
    metrics.duration.labels("start").observe(0.1)
    exported = set(re.findall(r"^# TYPE (\w+) ", generate_latest(metrics.registry).decode(), re.M))
    names = set()
    for family in exported:  # what PromQL may name: a counter's _total, a histogram's _bucket
        names |= {family, f"{family}_total", f"{family}_bucket", f"{family}_count"}
    dash = load()
    exprs = [t["expr"] for _, t in targets(dash)]
    exprs += [v["query"]["query"] for v in dash["templating"]["list"]]
    used = {m for e in exprs for m in re.findall(r"\bwggw_\w+", e)}
    assert used and used <= names, sorted(used - names)
