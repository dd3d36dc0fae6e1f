"""Wait until the gateways of a fleet that hold something report a store generation at least
N (their agents' reports, core/fleet.py): `tenant move` waits so on its target, and `peer
add/remove --apply` on the gateways holding the tenant when it is placed on named gateways
(the agents there apply it; this host runs none of it). The reports are polled: they are
plain rows that bump no generation and notify nobody. No lock is held while waiting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wggw.core.errors import FleetWaitError, ValidationError
from wggw.core.fleet import GatewayReport, health
from wggw.core.placement import tenant_gateways

TIMEOUT_ENV = "WGGW_FLEET_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
FIRST_POLL, MAX_POLL = 0.01, 0.05  # seconds: one small SELECT each; the wait is the latency

Echo = Callable[[str], None] | None


@dataclass(frozen=True)
class Target:
    """What to wait for: these gateways at this store generation or later."""

    gateways: tuple[str, ...]
    generation: int


def timeout_from_env() -> float:
    """WGGW_FLEET_TIMEOUT seconds (default 30): how long `--apply` waits for the gateways."""
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise ValidationError(TIMEOUT_ENV, f"{raw!r} is not a number of seconds in (0, 86400]")
    return value


def holders(store, tenant: str) -> tuple[str, ...]:
    """The named gateways that run `tenant` (point reads); () when it runs on the implicit
    local gateway (a single-host store: this host applies it itself)."""
    with store.snapshot() as tx:
        t = tx.tenant(tenant)
        iface = tx.interface(t.interface) if t is not None else None
    if t is None:
        return ()
    return tuple(sorted(g for g in tenant_gateways(t, iface) if g is not None))


def generation(store) -> int:
    """The store's generation now (after a commit: that commit's or a later one's). Untyped
    `store`: the abstract Store does not declare generation() (sqlite.Tx does, by mistake)."""
    return int(store.generation())


def peer_target(store, tenant: str) -> Target | None:
    """After a committed peer change: the gateways to wait for, or None (apply here)."""
    gateways = holders(store, tenant)
    return Target(gateways, generation(store)) if gateways else None


def merged(targets: Iterable[Target | None]) -> Target | None:
    """One wait for several changes: every gateway named, the newest generation."""
    real = [t for t in targets if t is not None]
    if not real:
        return None
    gateways = sorted({g for t in real for g in t.gateways})
    return Target(tuple(gateways), max(t.generation for t in real))


def pending(
    reports: Iterable[GatewayReport], target: Target, now: float, healthy: bool
) -> dict[str, GatewayReport | None]:
    """The gateways of `target` not there yet, with their last report (None: none)."""
    by_name = {r.gateway: r for r in reports}
    out: dict[str, GatewayReport | None] = {}
    for g in target.gateways:
        r = by_name.get(g)
        done = r is not None and r.generation >= target.generation
        if done and healthy:
            done = health(r, now) == "healthy"
        if not done:
            out[g] = r
    return out


def wait(
    store,
    target: Target,
    timeout: float,
    healthy: bool = False,
    what: str = "the change",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, GatewayReport]:
    """Poll the reports until every gateway of `target` reports generation >= N (and, with
    `healthy`, a healthy round); the reports that said so. Past `timeout` seconds:
    FleetWaitError naming the gateways still missing and what they last said."""
    deadline = clock() + timeout
    delay = FIRST_POLL
    while True:
        reports = store.reports()
        left = pending(reports, target, time.time(), healthy)
        if not left:
            mine = set(target.gateways)
            return {r.gateway: r for r in reports if r.gateway in mine}
        if clock() >= deadline:
            raise FleetWaitError(_timeout_line(left, target, timeout, what))
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(MAX_POLL, delay * 2)


def _timeout_line(
    left: dict[str, GatewayReport | None], target: Target, timeout: float, what: str
) -> str:
    now = time.time()
    parts = []
    for g, r in left.items():
        if r is None:
            parts.append(f"{g} (no report: is `wggw agent --gateway {g}` running?)")
            continue
        said = f"generation {r.generation}, {health(r, now)}"
        said += f", {now - r.reported_at:.0f}s ago"
        parts.append(f"{g} ({said}" + (f": {r.error})" if r.error else ")"))
    return (
        f"{what} (generation {target.generation}) was not applied within {timeout:g}s "
        f"on {', '.join(parts)}"
    )


def wait_for_peer(store, target: Target, echo: Echo = None) -> None:
    """`peer add/remove --apply` on a fleet: wait until every gateway holding the tenant
    has applied it (the store lock is released by then)."""
    start = time.monotonic()
    wait(store, target, timeout_from_env(), what="the peer change (committed to the store)")
    if echo:
        took = time.monotonic() - start
        echo(
            f"applied on {', '.join(target.gateways)} (generation {target.generation}) "
            f"after {took:.2f}s."
        )
