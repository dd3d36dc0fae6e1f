"""What the agents of a fleet report back to the shared store, and how to read it (pure).

An agent (`wggw agent --gateway NAME`) writes one `GatewayReport` after every round and as a
heartbeat, and `PeerReport`s (last endpoint, handshake, bytes) for the peers it holds. Reports
are observations, not desired state: they bump no generation and chain no audit record. The
CLI (`gateway list`, `status --fleet`) and `tenant move` read them; a new active gateway
(issue 14) reads the peers' last endpoints to start handshakes itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# A report older than this many heartbeats means the agent is gone (or cut off).
STALE_HEARTBEATS = 3
HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class GatewayReport:
    gateway: str
    generation: int  # the store generation its last converged round applied
    healthy: bool  # converged and its uplink usable (what keepalived tracks, issue 14)
    error: str | None  # the last round's error, one line; None when it converged
    version: str  # wggw's version
    host: str  # the host name the agent runs on
    pid: int
    started_at: float
    reported_at: float
    converged_at: float | None = None
    details: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PeerReport:
    gateway: str
    public_key: str
    endpoint: str | None  # HOST:PORT the peer last sent from, as the gateway saw it
    latest_handshake: float | None  # unix time; None: never
    rx_bytes: int = 0
    tx_bytes: int = 0
    reported_at: float = 0.0


def health(report: GatewayReport | None, now: float, heartbeat: float = HEARTBEAT_SECONDS) -> str:
    """One word for an operator: missing (never reported), stale (silent for too long),
    unhealthy (reports an error or a broken uplink), healthy."""
    if report is None:
        return "missing"
    if now - report.reported_at > STALE_HEARTBEATS * heartbeat:
        return "stale"
    return "healthy" if report.healthy else "unhealthy"


def lag(report: GatewayReport | None, generation: int) -> int | None:
    """How many store generations the gateway is behind (None: it never reported)."""
    return None if report is None else max(0, generation - report.generation)


def last_endpoints(reports: Iterable[PeerReport]) -> dict[str, PeerReport]:
    """Per public key, the report with the newest handshake and a known endpoint: where to
    find the peer now, whichever gateway saw it last."""
    out: dict[str, PeerReport] = {}
    for r in reports:
        if r.endpoint is None:
            continue
        best = out.get(r.public_key)
        if best is None or (r.latest_handshake or 0) > (best.latest_handshake or 0):
            out[r.public_key] = r
    return out
