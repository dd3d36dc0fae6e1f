"""`wggw tenant move T --to GATEWAY`: move a tenant to another gateway of the fleet in two
phases, so the new gateway has converged it before the old one lets it go.

Phase 1 commits `moving_to = G`: the tenant is then placed on its old gateways and on G
(core/placement.py), and G's agent builds it. We wait (ops/fleetwait.py, no lock held) until
G reports a healthy round at that generation or later. Phase 2 commits `gateway = G,
moving_to = None`: the old gateways' agents release it on their next round. On a timeout,
an error or Ctrl-C in between, phase 1 is rolled back (the old placement alone again) and the
move fails with one line. We do not wait for the old gateways to release: a gateway that is
down (often why one moves tenants off it) could never say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from wggw.core import validate
from wggw.core.errors import FleetWaitError, ValidationError, WggwError
from wggw.core.placement import tenant_gateways
from wggw.ops import fleetwait
from wggw.ops.gateways import find_gateway
from wggw.store.sqlite import Store

Echo = Callable[[str], None] | None


@dataclass(frozen=True)
class Moved:
    tenant: str
    source: tuple[str, ...]  # the gateways it ran on before
    target: str
    generation: int  # the store generation of phase 2 (the old gateways release from it)
    waited: float  # seconds until the target reported the tenant built


def move_tenant(
    store: Store, name: str, to: str, timeout: float, echo: Echo = None
) -> Moved | None:
    """Move tenant `name` onto gateway `to` (see the module's docstring); None when it runs
    there alone already (nothing changed)."""
    if not 0 < timeout <= 86400:
        raise ValidationError("timeout", f"{timeout:g} is not a number of seconds in (0, 86400]")
    start = time.monotonic()
    source = _begin(store, name, to)
    if source is None:
        return None
    target = fleetwait.Target((to,), fleetwait.generation(store))
    try:
        if echo:
            echo(f"moving tenant {name}: waiting for {to} to apply generation {target.generation}")
        fleetwait.wait(store, target, timeout, healthy=True, what=f"tenant move of {name} to {to}")
        generation = _finish(store, name, to, source)
    except BaseException as e:
        _roll_back_after(store, name, to, e)
        raise
    return Moved(name, source, to, generation, time.monotonic() - start)


def _begin(store: Store, name: str, to: str) -> tuple[str, ...] | None:
    """Phase 1: `moving_to = to`. The gateways it ran on, or None (already there alone)."""
    with store.transaction() as tx:
        state = tx.load()
        t = validate.find_tenant(state, name)
        find_gateway(state, to)
        iface = validate.find_interface(state, t.interface)
        if t.moving_to not in (None, to):
            raise ValidationError(
                "tenant", f"{name} is already moving to {t.moving_to} (another `tenant move`)"
            )
        placed = tenant_gateways(replace(t, moving_to=None), iface)
        if None in placed:
            raise ValidationError(
                "tenant",
                f"{name} runs on no named gateway (its interface {iface.name} lists none); "
                f"place the interface first: wggw interface set {iface.name} --gateway GW",
            )
        source = tuple(sorted(g for g in placed if g is not None))
        if source == (to,):
            return None  # it runs there (and only there) already
        if t.moving_to == to:
            return source  # a move left unfinished (its roll-back failed): wait again
        tx.update_tenant(replace(t, moving_to=to))
        tx.record_event("tenant.move.begin", name, {"from": list(source), "to": to})
    return source


def _finish(store: Store, name: str, to: str, source: tuple[str, ...]) -> int:
    """Phase 2: pinned to `to`, no longer moving. The generation of this commit."""
    with store.transaction() as tx:
        t = validate.find_tenant(tx.load(), name)
        if t.moving_to != to:
            raise ValidationError(
                "tenant", f"{name} is no longer moving to {to}: changed by someone else meanwhile"
            )
        tx.update_tenant(replace(t, gateway=to, moving_to=None))
        tx.record_event("tenant.move", name, {"from": list(source), "to": to})
    return fleetwait.generation(store)


def _roll_back_after(store: Store, name: str, to: str, cause: BaseException) -> None:
    """Undo phase 1 after `cause`; a timeout's line then says so. If the undo fails too
    (the store is gone), say what is left: the tenant still placed on both."""
    try:
        rolled = _roll_back(store, name, to)
    except WggwError as e:
        raise FleetWaitError(
            f"{cause}; the roll-back failed too ({e}): {name} is still placed on {to} as "
            f"well; run `wggw tenant move {name} --to {to}` again to finish it"
        ) from None
    if rolled and isinstance(cause, FleetWaitError):
        raise FleetWaitError(f"{cause}; rolled back: {name} stays where it was") from None


def _roll_back(store: Store, name: str, to: str) -> bool:
    """Undo phase 1 if it is still ours; True if it was undone."""
    with store.transaction() as tx:
        t = next((x for x in tx.load().tenants if x.name == name), None)
        if t is None or t.moving_to != to:
            return False
        tx.update_tenant(replace(t, moving_to=None))
        tx.record_event("tenant.move.abort", name, {"to": to})
    return True
