"""Per egress IP: conntrack entries in use against the source ports SNAT can pick from.

An early warning of source-port exhaustion: a tenant whose flows come near 64,512 entries on
one egress IP (towards one destination and protocol, the worst case) starts losing new
connections. One conntrack dump counts every egress IP (wggw/backends/conntrack.py, linear in
the table size: 5-20 us an entry here, 0.05x pyroute2's parser, benchmarks/conntrack_count.py).
The result is reused for `min_interval` seconds and for 20x the last dump's time, so the dumps
take at most ~5% of a core whatever the table size and scrape rate; a dump stops after `limit`
entries (a gauge says so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from wggw.backends import conntrack

_LABELS = ("tenant", "egress")


class EgressPorts:
    def __init__(self, min_interval: float = 5.0, limit: int = 262_144, duty: float = 20.0) -> None:
        self.min_interval, self.limit, self.duty = min_interval, limit, duty
        self._lock = threading.Lock()
        self._at = -1e9
        self._key: tuple = ()
        self._counts: dict[str, int] = {}
        self._seconds, self._truncated, self._ok = 0.0, False, True

    def families(self, state) -> Iterator[GaugeMetricFamily]:
        pairs = [(t.name, str(ip)) for t in state.tenants for ip in t.egress]
        self._refresh(tuple(sorted({ip for _, ip in pairs})))
        entries = GaugeMetricFamily(
            "wggw_egress_conntrack_entries",
            "Conntrack entries whose reply goes to the egress IP (its source ports in use).",
            labels=_LABELS,
        )
        ports = GaugeMetricFamily(
            "wggw_egress_ports_available",
            "Source ports SNAT picks from on the egress IP (per protocol and destination).",
            labels=_LABELS,
        )
        for tenant, ip in pairs:
            if self._ok:
                entries.add_metric((tenant, ip), self._counts.get(ip, 0))
            ports.add_metric((tenant, ip), conntrack.SNAT_PORTS)
        yield entries
        yield ports
        yield GaugeMetricFamily(
            "wggw_egress_conntrack_scan_seconds",
            "Time the last conntrack dump took.",
            value=self._seconds,
        )
        yield GaugeMetricFamily(
            "wggw_egress_conntrack_scan_truncated",
            "1 if the last conntrack dump stopped at the entry limit (counts are lower bounds).",
            value=1 if self._truncated else 0,
        )

    def _refresh(self, addresses: tuple[str, ...]) -> None:
        with self._lock:  # two scrapes at once: one dump
            now = time.monotonic()
            reuse = max(self.min_interval, self.duty * self._seconds)
            if addresses == self._key and now - self._at < reuse:
                return
            try:
                self._counts, self._truncated = conntrack.count_by_reply_dst(addresses, self.limit)
                self._ok = True
            except conntrack.ConntrackError:
                self._ok = False  # e.g. no ctnetlink: no entries series rather than zeros
            self._key, self._at, self._seconds = addresses, now, time.monotonic() - now
