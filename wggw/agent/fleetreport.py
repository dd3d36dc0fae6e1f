"""What a fleet agent tells the store about itself: its GatewayReport (after every round
and as a heartbeat) and PeerReports (only the peers whose endpoint, handshake or bytes
moved), from what a full round read, or, when no full round has read the devices for
PEER_READ_SECONDS or more (store changes are applied as deltas, without a read), from one read of
this gateway's devices alone with a heartbeat; and its health.

Health = converged (the last round left the host matching the store generation it read)
and the uplink usable (every uplink of this gateway's tenants is there, up and has carrier;
a tenant without one needs main's default route). A store that is down does not make the
gateway unhealthy: the data plane keeps forwarding with its last applied state, and failing
every gateway over because the database is away would only add an outage.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable

from wggw import __version__
from wggw.core.fleet import GatewayReport, PeerReport
from wggw.core.plan import Observed

# The peers' reports are at most this old (plus a heartbeat): where a moved tenant's or a
# new active gateway's handshakes go. A big gateway's read takes longer; it is then spaced
# to cost at most 1/READ_SHARE of the time (agent/fleet.py).
PEER_READ_SECONDS = 10.0
READ_SHARE = 50
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


def uplink_problem(system, state) -> str | None:
    """Why this gateway's tenants cannot leave (one line), or None when they can."""
    if state is None or not state.tenants:
        return None
    facts = system.facts()
    if any(t.uplink is None for t in state.tenants) and not facts.default_routes:
        return "no default route in the main table"
    uplinks = sorted({t.uplink for t in state.tenants if t.uplink})
    missing = [u for u in uplinks if u not in facts.links]
    if missing:
        return f"uplink {missing[0]} is missing"
    flags = _link_flags(system, uplinks)
    for name in uplinks:
        f = flags.get(name)
        if f is not None and not (f & IFF_UP and f & IFF_LOWER_UP):
            return f"uplink {name} is down"
    return None


def _link_flags(system, names: Iterable[str]) -> dict[str, int]:
    """Link flags of `names` on the real host (one rtnetlink dump); the fake has none."""
    from wggw.backends.fake import FakeSystem

    if isinstance(system, FakeSystem):
        return {}
    from wggw.backends.netlink import dump

    wanted = set(names)
    return {
        link["IFLA_IFNAME"]: int(link["flags"])
        for link in dump.links()
        if link.get("IFLA_IFNAME") in wanted
    }


def read_devices(system, names: list[str]) -> Observed:
    """This gateway's WireGuard devices only (peers' endpoints, handshakes, bytes): what the
    peer reports need when no round has read them lately."""
    from wggw.backends.fake import FakeSystem

    if isinstance(system, FakeSystem):
        return Observed(wg=system.observe_devices())
    return Observed(wg=system.observe_devices(names))


class Reporter:
    """Builds one gateway's reports; remembers what was written so only changes go out."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.started_at = time.time()
        self.host = socket.gethostname()
        self.written: dict[str, tuple] = {}  # public key -> what its last report said

    def gateway_report(
        self,
        generation: int,
        healthy: bool,
        error: str | None,
        converged_at: float | None,
        details: dict[str, object],
    ) -> GatewayReport:
        return GatewayReport(
            gateway=self.gateway,
            generation=max(0, generation),
            healthy=healthy,
            error=error,
            version=__version__,
            host=self.host,
            pid=os.getpid(),
            started_at=self.started_at,
            reported_at=time.time(),
            converged_at=converged_at,
            details=details,
        )

    def changed_peers(self, observed: Observed | None) -> list[PeerReport]:
        """PeerReports of the peers whose runtime figures moved since they were last written
        (none when the round read no device)."""
        if observed is None:
            return []
        now = time.time()
        out = []
        for dev in observed.wg.values():
            for p in dev.peers.values():
                seen = (p.endpoint, p.last_handshake, p.rx_bytes, p.tx_bytes)
                if self.written.get(p.public_key) == seen:
                    continue
                out.append(
                    PeerReport(
                        self.gateway,
                        p.public_key,
                        p.endpoint,
                        p.last_handshake or None,
                        p.rx_bytes,
                        p.tx_bytes,
                        now,
                    )
                )
        return out

    def written_ok(self, peers: Iterable[PeerReport]) -> None:
        for p in peers:
            handshake = p.latest_handshake or 0.0
            self.written[p.public_key] = (p.endpoint, handshake, p.rx_bytes, p.tx_bytes)
