"""The agent's fleet side, in one object the event loop (agent/loop.py) calls: the store's
LISTEN connection and up/down state (agent/fleetlisten.py), the store metrics, and, for
`--gateway NAME`, the reports back to the store and the health (agent/fleetreport.py).

Without PostgreSQL there is nothing to listen to (the loop's poll and the control socket
wake it); without a gateway nothing is reported (a single host has no fleet to tell).
"""

from __future__ import annotations

import time

from wggw.agent.fleetlisten import Listener, backoff_delay
from wggw.agent.fleetreport import (
    PEER_READ_SECONDS,
    READ_SHARE,
    Reporter,
    read_devices,
    uplink_problem,
)
from wggw.core.errors import StoreUnavailableError, WggwError
from wggw.core.fleet import HEARTBEAT_SECONDS
from wggw.core.plan import Observed


class Fleet:
    def __init__(self, url: str | None, gateway: str | None, metrics, log) -> None:
        self.gateway, self.log = gateway, log
        self.listener = Listener(url) if url else None
        self.reporter = Reporter(gateway) if gateway else None
        self.next_connect: float | None = None  # when the next LISTEN attempt is due
        self.next_beat = time.monotonic()
        self.peers_read_at = time.monotonic()  # when a round last read the devices
        self.peers_read_took = 0.0  # how long the last read of the devices alone took
        self.store_up_now = True
        self.last_error: str | None = None
        self.converged = False
        self.converged_at: float | None = None
        m = metrics
        self.up, self.reconnects, self.errors, self.healthy = (
            m.store_up,
            m.store_reconnects,
            m.store_errors,
            m.healthy,
        )
        self.notifications = m.store_notifications
        self.up.set(1)

    # --- the store's connection -------------------------------------------------
    def start(self) -> None:
        """LISTEN before the first converge (a commit during it wakes the next round)."""
        if self.listener is not None and not self.listener.connect():
            self._lost(self.listener.last_error or "cannot LISTEN", time.monotonic())

    def read(self) -> list[int] | None:
        """Notified generations; None when the connection just broke."""
        assert self.listener is not None
        gens = self.listener.read()
        if gens:
            self.notifications.inc(len(gens))
        if gens is None:
            self._lost(self.listener.last_error or "connection lost", time.monotonic())
        return gens

    def reconnect_due(self, now: float) -> bool:
        return self.next_connect is not None and now >= self.next_connect

    def try_reconnect(self, now: float) -> bool:
        """One LISTEN attempt; True when the store is back (the caller resyncs fully)."""
        assert self.listener is not None
        if self.listener.connect():
            self.next_connect = None
            self.reconnects.inc()
            self._store_ok()
            self.log("store", state="up", note="listening again; full resync")
            return True
        self.errors.inc()
        self.next_connect = now + backoff_delay(self.listener.failures)
        return False

    def store_failed(self, error: Exception) -> None:
        """A store access of the loop failed (a poll, a round, a report)."""
        if isinstance(error, StoreUnavailableError):
            self._lost(str(error), time.monotonic(), close=True)
        else:
            self.errors.inc()

    def _lost(self, why: str, now: float, close: bool = False) -> None:
        if self.listener is not None and close:
            self.listener.close()
        if self.store_up_now:
            self.log("store", state="down", error=why, note="the data plane stays as it is")
        self.store_up_now = False
        self.up.set(0)
        self.errors.inc()
        if self.listener is not None and self.next_connect is None:
            self.next_connect = now + backoff_delay(max(1, self.listener.failures))

    def _store_ok(self) -> None:
        self.store_up_now = True
        self.up.set(1)

    @property
    def store_down(self) -> bool:
        return not self.store_up_now

    def wake_at(self) -> float | None:
        beat = self.next_beat if self.reporter is not None else None
        times = [t for t in (self.next_connect, beat) if t is not None]
        return min(times) if times else None

    # --- rounds, reports, health --------------------------------------------------
    def round_done(
        self,
        store,
        system,
        state,
        generation: int,
        error: str | None,
        observed: Observed | None = None,
    ) -> None:
        """After every round: the report (and the changed peers), health refreshed."""
        self.converged, self.last_error = error is None, error
        if observed is not None:
            self.peers_read_at = time.monotonic()
        if error is None:
            self.converged_at = time.time()
            if self.listener is None or self.listener.up:
                self._store_ok()
        self.report(store, system, state, generation, observed)

    def heartbeat_due(self, now: float) -> bool:
        return self.reporter is not None and now >= self.next_beat

    def health(self, system, state) -> dict:
        try:
            uplink = uplink_problem(system, state)
        except Exception as e:  # noqa: BLE001 - a failed look is an unusable uplink
            uplink = f"cannot read the uplink: {e}"
        healthy = self.converged and uplink is None
        self.healthy.set(1 if healthy else 0)
        return {
            "healthy": healthy,
            "converged": self.converged,
            "uplink": uplink,
            "error": self.last_error,
            "store_up": self.store_up_now,
        }

    def report(self, store, system, state, generation: int, observed=None) -> None:
        """Write the GatewayReport (and changed PeerReports); skipped while the store is
        down (the reconnect's resync reports again)."""
        now = time.monotonic()
        self.next_beat = now + HEARTBEAT_SECONDS
        spacing = max(PEER_READ_SECONDS, READ_SHARE * self.peers_read_took)
        if observed is None and state is not None and now - self.peers_read_at > spacing:
            try:
                observed = read_devices(system, [i.name for i in state.interfaces])
            except Exception as e:  # noqa: BLE001 - the gateway report goes out all the same
                self.log("error", trigger="report", error=f"cannot read the devices: {e}")
            self.peers_read_at = now
            self.peers_read_took = time.monotonic() - now
        h = self.health(system, state)
        if self.reporter is None or self.store_down:
            return
        error = h["error"] or h["uplink"]
        gw = self.reporter.gateway_report(
            generation, h["healthy"], error, self.converged_at, {"uplink": h["uplink"]}
        )
        peers = self.reporter.changed_peers(observed)
        try:
            store.write_report(gw, peers)
        except WggwError as e:
            self.store_failed(e)
            self.log("error", trigger="report", error=str(e))
            return
        self.reporter.written_ok(peers)
