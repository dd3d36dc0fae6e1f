"""Observe what wggw owns, plan, print or apply, re-observe and verify.

No logic of its own: compilation is `desired`, diffing is `plan`, kernel access is a
`System` (backends/system.py, or the fake in tests). `down` is the same path with an
empty desired state, so it needs no store and removes exactly what wggw owns.
`converge_peer` is the same path narrowed to one peer's WireGuard entries (`peer add/remove
--apply`): a peer change touches nothing else, as its addresses come from pools that are
already routed and NATed.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

from wggw.core import desired as desired_mod
from wggw.core import endpoints
from wggw.core.errors import VerifyError
from wggw.core.hostfacts import HostFacts
from wggw.core.model import Interface, Peer, State, Tenant
from wggw.core.plan import (
    AddAddress,
    AddRoute,
    AddRule,
    Change,
    ConfigureDevice,
    CreateDevice,
    DeleteDevice,
    DelRule,
    Observed,
    RemovePeer,
    ReplaceNft,
    SetLink,
    SetSysctl,
    UpsertPeer,
    plan,
    plan_device,
)
from wggw.core.planscript import echo_change

Echo = Callable[[str], None] | None
Seen = tuple[HostFacts, Observed]  # host facts, and an observation without the devices


@dataclass
class Result:
    desired: desired_mod.Desired
    observed: Observed
    changes: list[Change]
    facts: HostFacts | None = None


def compute(
    state: State,
    system,
    check_nft: bool = True,
    previous: Result | None = None,
    seen: Seen | None = None,
) -> Result:
    """Plan only: nothing is changed (an nft table to be loaded is checked by the kernel's parser).
    With `previous` (a plan of the same state), its compiled desired state is reused when
    the host facts still compile to it: compiling 10,000 peers costs ~0.2 s. With `seen`
    (host facts and everything but the devices, observed already), only the devices are read."""
    facts = system.facts() if seen is None else seen[0]
    if (
        previous is not None
        and previous.facts is not None
        and desired_mod.still_compiles_same(state, previous.facts, facts)
    ):
        want = previous.desired
    else:
        want = desired_mod.compile_state(state, facts)
    have = system.observe() if seen is None else replace(seen[1], wg=system.observe_devices())
    memory = system.remembered_endpoints(sorted(want.wg))
    latest = endpoints.remember(memory, want, have)
    system.remember_endpoints(memory, latest)  # writes only what changed
    changes = endpoints.hint(plan(want, have), latest)
    # Only a table that is going to be loaded needs the parser's word: an unchanged digest
    # means this very text is already in the kernel (saves an `nft -c` run, ~50 ms).
    if check_nft and any(isinstance(c, ReplaceNft) for c in changes):
        system.check_nft(want.nft.text)
    return Result(want, have, changes, facts)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a converge of 10,000 peers builds ~10^6 objects,
    none of them garbage in cycles, and the collector's passes over them cost ~15 % of a cold
    apply. Collection resumes (as it was) on the way out, also on an error."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def converge(state: State, system, echo: Echo = None) -> Result:
    """Apply the plan for `state`, then observe again; leftovers are an error."""
    with gc_paused():
        return _converge(state, system, echo)


def _converge(state: State, system, echo: Echo) -> Result:
    # No `nft -c` first: the table is the first change applied (`_table_first`).
    first = compute(state, system, check_nft=False)
    seen = _apply(_table_first(first.changes), system, echo) if first.changes else None
    second = compute(state, system, check_nft=False, previous=first, seen=seen)
    if second.changes:
        head = "; ".join(c.describe() for c in second.changes[:3])
        raise VerifyError(
            f"state still differs after apply ({len(second.changes)} changes left): {head}"
        )
    return first


def _apply(changes: list[Change], system, echo: Echo) -> Seen | None:
    """Apply `changes`. When they end with peer changes (a cold apply: 10,000 peers, which
    wireguard-go takes most of a second to set up), that transaction is started as soon as
    everything it must follow is in place (`_split`, `_dark_start`), and the addresses,
    routes and rules go out alongside it, followed by the verify's look at everything but
    the devices (peer changes touch no link, address, route, rule, nft table or tc filter).
    Returns that look, or None (then the verify observes everything afterwards)."""
    head, side, peers = _split(changes)
    seen = None
    if not peers or not hasattr(system, "observe_host"):
        system.apply(changes, echo)
    else:
        seen = _with_peers(head, side, peers, system, echo)
    # Last, so that a re-created device is up (wireguard-go learns that asynchronously).
    for device, peers_kicked in endpoints.kicks(changes).items():
        system.kick(device, peers_kicked, echo)
    return seen


def _with_peers(head: list, side: list, peers: list, system, echo: Echo) -> Seen:
    """`_apply` of a plan that ends with peers: what must come first, then the peers'
    transaction on a thread while the rest of the head (after a dark start), the side and
    the look go out here."""
    settle = getattr(system, "settle", None)  # the nft record, off the peers' path
    later = {"settle": False} if settle else {}
    dark = _dark_start(head, peers) if hasattr(system, "prepare_peers") else None
    send_peers = _before_peers(
        dark[0] if dark else head, dark is not None, peers, system, echo, later
    )
    for change in (peers if dark else side + peers) if echo is not None else ():
        echo_change(echo, change, line(system, change))  # in the order they start
    refused: list[BaseException] = []  # a dark start's guards, not applied

    def side_then_look() -> Seen | None:
        if dark is not None:
            try:
                system.apply(dark[1], echo, **later)
            except BaseException as e:  # raised once the peers' transaction is over
                refused.append(e)
                return None
            for change in side if echo is not None else ():
                echo_change(echo, change, line(system, change))
        if settle:
            settle()
        if side:
            system.apply(side, None)
        return (system.facts(), system.observe_host())

    try:
        seen = _alongside(send_peers, side_then_look)
    finally:
        if refused and dark is not None:
            _remove_created(dark[0], system)
    if refused:
        raise refused[0]
    assert seen is not None  # None only when refused
    return seen


def _before_peers(
    first: list, dark: bool, peers: list, system, echo: Echo, later
) -> Callable[[], None]:
    """Apply `first` (what the peers' transaction must follow) and return the function that
    sends that transaction. Where the host can prepare it (the real one), its request is
    built here while `first` goes out on a thread: built on the thread that sends it, it
    would wait for this thread's turns at the interpreter lock (~0.1 s for 10,000 peers
    while the nft record is parsed), and wireguard-go with it. Only the table's load (a
    wait for `nft -f`) or, when `dark`, the new devices' creation goes alongside; the rest
    of `first` follows, in order."""
    prepare = getattr(system, "prepare_peers", None)
    if prepare is None:
        if first:
            system.apply(first, echo, **later)
        return lambda: system.apply(peers, None, **later)
    table = first[:1] if first and isinstance(first[0], ReplaceNft) else []
    alongside = first if dark else table
    if not alongside:
        send = prepare(peers)
    else:
        built: list[Callable[[], None]] = []
        _alongside(
            lambda: system.apply(alongside, echo, **later), lambda: built.append(prepare(peers))
        )
        send = built[0]
    if first[len(alongside) :]:
        system.apply(first[len(alongside) :], echo, **later)
    return send


ALONGSIDE_PEERS = (AddAddress, AddRoute, AddRule, DelRule)


def _dark_start(head: list[Change], peers: list[Change]) -> tuple[list, list] | None:
    """When every peer change is for a device this plan creates: (those devices' creation
    and configuration; the rest of the head with their links' up moved last, after the nft
    table and the tc guard). A link that is down passes nothing and WireGuard opens no
    socket for it, so its peers may be set before the guards, as long as it comes up only
    after them. None when some peer's device exists already (its link is up: guards first)."""
    created = {c.name for c in head if isinstance(c, CreateDevice)}
    if not created or any(getattr(c, "device", None) not in created for c in peers):
        return None
    early = [
        c for c in head if isinstance(c, (CreateDevice, ConfigureDevice)) and c.name in created
    ]
    ups = [c for c in head if isinstance(c, SetLink) and c.spec.name in created]
    rest = [c for c in head if c not in early and c not in ups]
    return early, rest + ups


def _remove_created(early: list[Change], system) -> None:
    """After a dark start whose guards failed (a table the kernel refused): remove the
    devices this apply created, so the host is left as it was (their links never came up:
    nothing passed). The guards' failure is the one reported."""
    gone = [DeleteDevice(c.name) for c in early if isinstance(c, CreateDevice)]
    with contextlib.suppress(Exception):
        system.apply(gone, None)


def _table_first(changes: list[Change]) -> list[Change]:
    """The nft table's load moved to the front. `nft -f` is one transaction that the kernel
    checks as it loads it, so a table it refuses then fails the apply before anything else
    changed, which is what an `nft -c` of the same text beforehand proved (at the cost of
    parsing 1,000 tenants' table twice, ~50 ms). The table names devices by name only, so
    it needs none of the changes it now precedes; it still comes before the tc guard, the
    routes and rules, and the peers, as the plan orders it."""
    tables = [c for c in changes if isinstance(c, ReplaceNft)]
    return tables + [c for c in changes if not isinstance(c, ReplaceNft)] if tables else changes


def _split(changes: list[Change]) -> tuple[list[Change], list[Change], list[Change]]:
    """(head, side, peers): `peers` is the trailing run of peer changes (empty unless the
    plan ends with one); `side` the address, route and rule changes before it, which may go
    out while that transaction runs; `head` the rest, in plan order: sysctls, the device,
    its link, the nft table with its fail-closed guard and the tc guard, all in place before
    any peer exists. Addresses come before routes within `side` (a route's `src` must be an
    address of the host), as in the plan."""
    cut = len(changes)
    while cut and isinstance(changes[cut - 1], (UpsertPeer, RemovePeer)):
        cut -= 1
    if cut == len(changes):
        return changes, [], []
    head = [c for c in changes[:cut] if not isinstance(c, ALONGSIDE_PEERS)]
    side: list[Change] = [c for c in changes[:cut] if isinstance(c, ALONGSIDE_PEERS)]
    return head, side, changes[cut:]


SWITCH_INTERVAL = 0.0005  # seconds; the interpreter's default is 0.005
R = TypeVar("R")


def _alongside(work: Callable[[], object], look: Callable[[], R]) -> R:
    """Run `work` in a thread while `look` runs here; wait for both. A failure of `work`
    is raised first (what was applied matters more than what was seen). Meanwhile the
    interpreter lock changes hands every SWITCH_INTERVAL: a thread that waits on nft or
    wireguard-go needs it back for a moment at each step, and at the default 5 ms those
    moments added ~60 ms to a cold apply's table load beside the peers' request."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # handed to the caller below
            failed.append(e)

    worker = threading.Thread(target=run, name="wggw-peers", daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        worker.start()
        try:
            result = look()
        finally:
            worker.join()
            if failed:
                raise failed[0]
    finally:
        sys.setswitchinterval(interval)
    return result


@dataclass(frozen=True)
class PeerScope:
    """One peer's WireGuard entries: `keys` are every public key the change touched (its
    current and retiring keys, before and after); `peers` are those still in the store."""

    interface: Interface
    tenant: Tenant
    peers: tuple[Peer, ...]
    keys: frozenset[str]


def converge_peer(scope: PeerScope, system, echo: Echo = None) -> list[Change] | None:
    """`converge` for the peer entries in `scope` only: observe just those peers, plan them
    with the same planner, apply, observe again and verify. Returns the changes applied, or
    None when the tenant is not live yet (no device, a device configured differently, or
    the tenant's pool routes missing): then only a full `converge` is right."""
    if not system.has_routes(desired_mod.pool_routes(scope.tenant)):
        return None
    want = desired_mod.device_spec(scope.interface, scope.peers)
    changes = _peer_changes(want, scope.keys, system)
    if changes is None:
        return None
    if changes:
        system.apply(changes, echo)
    left = _peer_changes(want, scope.keys, system)
    if left is None or left:
        head = "device gone" if left is None else "; ".join(c.describe() for c in left[:3])
        raise VerifyError(f"peer entries still differ after apply: {head}")
    return changes


def _peer_changes(want, keys: frozenset[str], system) -> list[Change] | None:
    have = system.observe_peers(want.name, keys)
    if have is None:
        return None
    changes = plan_device(want.name, want, have)
    if any(not isinstance(c, (UpsertPeer, RemovePeer)) for c in changes):
        return None  # the device itself differs (private key, port): a full converge's job
    return changes


def line(system, change: Change) -> str:
    """The `[#]` line of `change` as `system` carries it out (the fake prints the plan's own)."""
    describe = getattr(system, "line", None)
    return describe(change) if describe is not None else str(change)


def teardown(systems: list, echo: Echo = None) -> list[Change]:
    """Remove everything wggw owns (through every system given), without the store."""
    done: list[Change] = []
    empty = desired_mod.empty()
    for system in systems:
        # Sysctls are not removed like objects: the ones wggw changed are given back below.
        changes = [c for c in plan(empty, system.observe()) if not isinstance(c, SetSysctl)]
        system.apply(changes, echo)
        done.extend(changes)
    for system in systems[:1]:  # one record per network namespace, whatever the backend
        restored = system.restore_sysctls()
        for change in restored:
            if echo:
                echo(line(system, change))
        done.extend(restored)
    return done
