"""The data-plane operations the CLI calls: plan, apply, status, down and a one-peer apply.

Each picks the WireGuard backend (backends/select.py), takes the store lock where it
changes the host, and runs the one converge path (ops/converge.py) with its housekeeping
first: keys whose grace is over are retired and expired peers removed before the kernel
is made to match. Only `apply` (and the commands that apply) may load the kernel module
or create links; `plan` and `status` only read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from wggw.core import planscript
from wggw.core import status as status_report
from wggw.core.model import Peer, State
from wggw.ops import converge, hostrole, objects, rotation
from wggw.store.sqlite import Store

Echo = Callable[[str], None] | None


def system_for(backend: str | None = None, may_load: bool = False):
    """The real host through the backend called `backend` (None: auto). `may_load` lets
    selection load an installed but unloaded WireGuard module: for commands that apply."""
    from wggw.backends.select import select_backend
    from wggw.backends.system import RealSystem
    from wggw.ops.privilege import require_net_admin

    require_net_admin()  # exit 77 saying root is needed, not an unexpected PermissionError
    return RealSystem(select_backend(backend or "auto", may_load=may_load))


def placed(state: State, gateway: str | None) -> State:
    """The part of `state` this host runs: gateway `gateway` of a fleet (--gateway), else
    what is placed on no gateway (a single-host store: all of it, unchanged)."""
    if gateway is None and not state.gateways:
        return state
    if gateway is not None:
        from wggw.ops.gateways import find_gateway

        find_gateway(state, gateway)  # an unknown name is a typo, not an empty gateway
    from wggw.core.placement import on_gateway

    return on_gateway(state, gateway)


def _host_lock(store: Store, gateway: str | None):
    """What an apply holds: on a fleet gateway, that gateway's lock where the store has one
    (PostgreSQL), the one its agent's rounds hold, so operators elsewhere never wait for
    this host's converge and the agent never converges beside it; else the store lock."""
    gateway_locked = getattr(store, "gateway_locked", None)
    if gateway is not None and gateway_locked is not None:
        return gateway_locked(gateway)
    return store.locked()


def plan(
    store: Store, backend: str | None = None, verbose: bool = False, gateway: str | None = None
) -> list[str]:
    """What `apply` would change, one `[#] ...` line per change as this host's backend will
    carry it out (secrets masked; the nft text is checked by the kernel's parser); with
    `verbose` each line is followed by the re-runnable text it hands to a tool (nft -f)."""
    state = placed(store.load(), gateway)
    system = system_for(backend)
    result = converge.compute(state, system)
    return planscript.lines(result.changes, verbose, lambda c: converge.line(system, c))


def apply(
    store: Store,
    backend: str | None = None,
    echo: Echo = None,
    now: float | None = None,
    system=None,
    gateway: str | None = None,
):
    """Under the store lock: housekeeping (retire, expire), then converge this host's part
    (`placed`). Returns (rotation.Report, converge.Result)."""
    from wggw.backends.system import RealSystem
    from wggw.core import conflicts, ha

    # The host's role is the real host's (apply_peer hands its RealSystem in too); an
    # in-memory host of the tests has none.
    this_host = system is None or isinstance(system, RealSystem)
    system = system if system is not None else system_for(backend, may_load=True)
    with _host_lock(store, gateway), converge.gc_paused():  # the store's 10,000 peers too
        # An egress that conflicts with the host stops apply before anything, housekeeping too.
        whole = store.load()
        if this_host:  # gw1's host applying another part would tear gw1's down
            hostrole.check(whole, gateway)
        state = placed(whole, gateway)
        conflicts.check(state.tenants, system.facts(), ha.floating_egress(state))
        report = rotation.housekeeping(store, system, time.time() if now is None else now)
        result = converge.converge(placed(store.load(), gateway), system, echo)
        if this_host:
            hostrole.remember(whole, gateway)
        if result.changes:  # the host changed: on the record (the store did not)
            from wggw.ops import audit

            audit.record(store, "apply", "host", {"changes": len(result.changes)})
    return report, result


def apply_peer(
    store: Store,
    backend: str | None,
    tenant: str,
    peer: Peer | None,
    keys: Iterable[str],
    echo: Echo = None,
) -> list:
    """`peer add/remove --apply`: only this peer's WireGuard entries, or the whole `apply`
    while its tenant is not live yet. Returns the changes applied."""
    system = system_for(backend, may_load=True)
    with store.locked():
        changes = converge.converge_peer(
            objects.peer_scope(store, tenant, peer, keys), system, echo
        )
        if changes is None:
            report, result = apply(store, echo=echo, system=system)
            changes = result.changes
            for line in report.lines():
                if echo:
                    echo(line)
    return changes


def status(
    store: Store, backend: str | None = None, now: float | None = None, gateway: str | None = None
) -> dict:
    """Per-peer handshake, endpoint and traffic; per-tenant totals; drift; and the path each
    tenant's packets take, asked of the kernel like `ip route get` (core/status.py); of this
    host's part of the store (`placed`)."""
    from wggw.ops import paths

    state = placed(store.load(), gateway)
    system = system_for(backend)
    result = converge.compute(state, system, check_nft=False)
    checked = paths.check(state, result.desired, system)
    return status_report.build(state, result, time.time() if now is None else now, checked)


def paths_wrong(report: dict) -> bool:
    """True if `status` found a tenant whose packets would not take its own path."""
    from wggw.ops import paths

    return bool(paths.wrong(report["paths"]))


def down(backend: str | None = None, echo: Echo = None, stop_agent: bool = False) -> list:
    """Remove everything wggw created on this host, without the store: through the backend
    named, or every backend whose devices could be here. A running agent makes it refuse
    (LockBusyError) unless `stop_agent` (see ops/agentguard.py)."""
    from wggw.backends.select import present_backends
    from wggw.backends.system import RealSystem
    from wggw.ops.agentguard import without_agent
    from wggw.ops.privilege import require_net_admin

    require_net_admin("down")
    with without_agent(stop_agent, echo):
        systems = [system_for(backend)] if backend else [RealSystem(b) for b in present_backends()]
        removed = converge.teardown(systems, echo)
        hostrole.forget()  # nothing of wggw's left: the host may take any role now
        return removed
