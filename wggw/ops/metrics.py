"""Turn a `status` report into Prometheus metrics (node_exporter textfile-collector format).

`wggw status --prometheus FILE` from cron every minute keeps FILE current; node_exporter's
textfile collector publishes it. The file is written atomically by prometheus-client.
Only names, counters and times: never keys.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from wggw.core.timefmt import parse_iso


def registry_for(report: dict) -> CollectorRegistry:
    reg = CollectorRegistry()
    peer = ("tenant", "peer")
    handshake = Gauge(
        "wggw_peer_latest_handshake_seconds",
        "Unix time of the peer's latest handshake (0: never).",
        peer,
        registry=reg,
    )
    rx = Gauge(
        "wggw_peer_receive_bytes",
        "Bytes received from the peer since its session began.",
        peer,
        registry=reg,
    )
    tx = Gauge(
        "wggw_peer_transmit_bytes",
        "Bytes sent to the peer since its session began.",
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
        labels = (p["tenant"], p["name"])
        handshake.labels(*labels).set(parse_iso(p["latest_handshake"]) or 0)
        rx.labels(*labels).set(p["rx_bytes"])
        tx.labels(*labels).set(p["tx_bytes"])
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


def text(report: dict) -> str:
    return generate_latest(registry_for(report)).decode()


def write(report: dict, path: Path) -> None:
    write_to_textfile(str(path), registry_for(report))
