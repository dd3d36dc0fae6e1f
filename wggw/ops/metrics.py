"""Turn a `status` report into Prometheus metrics (node_exporter textfile-collector format).

`wggw status --prometheus FILE` from cron every minute keeps FILE current; node_exporter's
textfile collector publishes it. The file is written atomically by prometheus-client.
Only names, counters and times: never keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from wggw.core.timefmt import parse_iso


def registry_for(report: dict) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(_Counters(report))
    peer = ("tenant", "peer", "interface")
    handshake = Gauge(
        "wggw_peer_latest_handshake_timestamp_seconds",
        "Unix time of the peer's latest handshake (0: never).",
        peer,
        registry=reg,
    )
    configured = Gauge(
        "wggw_peer_configured",
        "1 if the peer is on its interface, 0 if missing.",
        peer,
        registry=reg,
    )
    for p in report["peers"]:
        labels = (p["tenant"], p["name"], p.get("interface") or "")
        handshake.labels(*labels).set(parse_iso(p["latest_handshake"]) or 0)
        configured.labels(*labels).set(1 if p["configured"] else 0)
    peers = Gauge("wggw_tenant_peers", "Peers of the tenant.", ("tenant",), registry=reg)
    active = Gauge(
        "wggw_tenant_active_peers",
        "Peers with a handshake in the last 3 minutes.",
        ("tenant",),
        registry=reg,
    )
    for t in report["tenants"]:
        peers.labels(t["name"]).set(t["peers"])
        active.labels(t["name"]).set(t["active_peers"])
    Gauge(
        "wggw_drift_changes",
        "Changes `wggw apply` would make (0: the host matches the store).",
        registry=reg,
    ).set(len(report["drift"]))
    path_ok = Gauge(
        "wggw_tenant_path_ok",
        "1 if the tenant's packets take its own table and egress (status path check), 0 if not.",
        ("tenant", "family"),
        registry=reg,
    )
    for e in report.get("paths", ()):
        path_ok.labels(e["tenant"], str(e["family"])).set(1 if e["ok"] else 0)
    return reg


class _Counters(Collector):
    """Byte counters as Prometheus counters (`_total`): WireGuard's own, which restart at zero
    with the interface (rate() treats that as a counter reset)."""

    def __init__(self, report: dict) -> None:
        self.report = report

    def collect(self) -> Iterator[CounterMetricFamily]:
        labels = ("tenant", "peer", "interface")
        for what, key, help_ in (
            ("receive", "rx_bytes", "Bytes received from the peer"),
            ("transmit", "tx_bytes", "Bytes sent to the peer"),
        ):
            fam = CounterMetricFamily(
                f"wggw_peer_{what}_bytes", f"{help_} (WireGuard's counter).", labels=labels
            )
            for p in self.report["peers"]:
                fam.add_metric((p["tenant"], p["name"], p.get("interface") or ""), p[key])
            yield fam
            fam = CounterMetricFamily(
                f"wggw_tenant_{what}_bytes",
                f"{help_}s of the tenant (sum of the peers' counters).",
                labels=("tenant",),
            )
            for t in self.report["tenants"]:
                fam.add_metric((t["name"],), t.get(key, 0))
            yield fam


def text(report: dict) -> str:
    return generate_latest(registry_for(report)).decode()


def write(report: dict, path: Path) -> None:
    write_to_textfile(str(path), registry_for(report))
