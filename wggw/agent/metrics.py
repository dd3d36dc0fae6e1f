"""The agent's Prometheus endpoint (prometheus-client's HTTP server in a thread).

The agent's own figures (reconcile duration, repairs by kind, contested kinds, last converge,
store generation, wireguard-go RSS, build info) plus the per-tenant and per-peer figures of
`status --prometheus` (wggw/ops/metrics.py) and the egress IPs' conntrack entries against their
ports (wggw/agent/egress_metrics.py). A scrape reads only the WireGuard devices afresh
(handshakes and bytes move; a full observe-and-plan of 10,000 peers every 15 s would cost the
idle agent several % of a core); the drift it reports is the agent's last round's, which any
kernel change refreshes within a second. Per-peer series are left out above `max_peers` peers
(0: never), so 10,000 peers cannot flood Prometheus. Only names and numbers: never a key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from wggw import __version__
from wggw.agent.backoff import KINDS
from wggw.agent.egress_metrics import EgressPorts
from wggw.backends import runfiles
from wggw.core import status
from wggw.core.plan import Change, Observed
from wggw.ops import metrics as status_metrics

TRIGGERS = ("start", "store", "drift", "resync", "peer")  # what wakes the loop (loop.py)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AgentMetrics:
    def __init__(self, max_peers: int = 1000) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.duration = Histogram(
            "wggw_reconcile_duration_seconds",
            "Time of one reconcile (observe, plan, apply, verify), by trigger.",
            ("trigger",),
            buckets=BUCKETS,
            registry=r,
        )
        self.repairs = Counter(
            "wggw_repairs_total",
            "Changes applied to undo drift (not store changes), by kind of object.",
            ("kind",),
            registry=r,
        )
        self.errors = Counter("wggw_reconcile_errors_total", "Reconciles that failed.", registry=r)
        self.contested = Gauge(
            "wggw_contested_objects",
            "Changes held back because something "
            "keeps undoing this kind of object (back-off), by kind.",
            ("kind",),
            registry=r,
        )
        self.last = Gauge(
            "wggw_last_converge_timestamp_seconds",
            "Unix time of the last reconcile that left the host matching the store.",
            registry=r,
        )
        self.generation = Gauge(
            "wggw_store_generation_applied",
            "Store generation (newest audit event id) the host was last converged to.",
            registry=r,
        )
        Info("wggw_build", "wggw build.", registry=r).info({"version": __version__})
        self._fleet_metrics(r)
        # Every kind present from the start at 0: the first repair is then an increase that
        # rate()/increase() see, and a dashboard shows 0 rather than "no data".
        for kind in sorted({*KINDS.values(), "other"}):
            self.repairs.labels(kind)
            self.contested.labels(kind).set(0)
        for trigger in TRIGGERS:
            self.duration.labels(trigger)
        self.live = LiveCollector(max_peers)
        r.register(self.live)

    def _fleet_metrics(self, r: CollectorRegistry) -> None:
        """The store's reachability (PostgreSQL: the LISTEN connection) and the health
        that a fleet gateway reports (agent/fleet.py)."""
        self.store_up = Gauge(
            "wggw_store_up",
            "1 while the store answers (PostgreSQL: LISTEN connected).",
            registry=r,
        )
        self.store_up.set(1)
        self.store_reconnects = Counter(
            "wggw_store_reconnects_total",
            "Times the agent got the store back after losing it (a full resync follows).",
            registry=r,
        )
        self.store_notifications = Counter(
            "wggw_store_notifications_total",
            "Commits the store announced to the agent (PostgreSQL NOTIFY).",
            registry=r,
        )
        self.store_errors = Counter(
            "wggw_store_errors_total",
            "Failed store accesses (reads, reports, LISTEN).",
            registry=r,
        )
        self.healthy = Gauge(
            "wggw_gateway_healthy", "1 while converged and the uplink usable.", registry=r
        )
        # High availability (issue 14): what keepalived told the agent, and the takeover kicks.
        self.ha_master = Gauge(
            "wggw_ha_master",
            "1 while keepalived holds this interface's floating addresses here (MASTER).",
            ["interface"],
            registry=r,
        )
        self.ha_kicked = Counter(
            "wggw_ha_kicked_peers_total",
            "Peers the agent started a handshake with on becoming MASTER.",
            registry=r,
        )

    def serve(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=self.registry)


class LiveCollector(Collector):
    """Figures read at scrape time: status gauges of the newest state, wireguard-go RSS."""

    def __init__(self, max_peers: int) -> None:
        self.max_peers = max_peers
        self._lock = threading.Lock()
        self._state = None
        self._system_factory: Callable[[], object] | None = None
        self.egress = EgressPorts()
        self._drift: list[Change] = []

    def update(
        self, state, system_factory: Callable[[], object], drift: Sequence[Change] = ()
    ) -> None:
        """The newest state (immutable), how to build a System for this thread, and what the
        agent's last round left different (empty once it converged)."""
        with self._lock:
            self._state, self._system_factory = state, system_factory
            self._drift = list(drift)

    def collect(self) -> Iterator:
        with self._lock:
            state, factory, drift = self._state, self._system_factory, self._drift
        yield _rss_family(state)
        if state is None or factory is None:
            return
        yield from self.egress.families(state)
        try:
            result = _Live(_observe_wg(state, factory()), drift)
        except Exception:  # noqa: BLE001 - a failed scrape-time read must not break the scrape
            return
        report = status.build(state, result, time.time())
        capped = self.max_peers == 0 or len(report["peers"]) > self.max_peers
        if capped:
            report = {**report, "peers": []}
        yield GaugeMetricFamily(
            "wggw_peer_series_enabled",
            "1 if per-peer series are published, 0 if --metrics-max-peers holds them back.",
            value=0 if capped else 1,
        )
        yield from status_metrics.registry_for(report).collect()


@dataclass
class _Live:
    """What status.build reads: the devices as read now, the drift of the last round."""

    observed: Observed
    changes: list[Change] = field(default_factory=list)


def _observe_wg(state, system) -> Observed:
    """Only wggw's WireGuard devices (every peer's handshake and bytes), nothing else."""
    wg = {}
    for iface in state.interfaces:
        dev = system.observe_peers(iface.name, None)
        if dev is not None:
            wg[iface.name] = dev
    return Observed(wg=wg)


def _rss_family(state) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(
        "wggw_wireguard_go_resident_memory_bytes",
        "Resident memory of each wireguard-go wggw started.",
        labels=("interface",),
    )
    for iface in state.interfaces if state is not None else ():
        rss = _rss_of_pidfile(iface.name)
        if rss is not None:
            fam.add_metric((iface.name,), rss)
    return fam


def _rss_of_pidfile(ifname: str) -> int | None:
    try:
        pid = int(runfiles.pid_file(ifname).read_text().split()[0])
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
