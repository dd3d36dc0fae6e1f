"""Observe what wggw owns, plan, print or apply, re-observe and verify.

No logic of its own: compilation is `desired`, diffing is `plan`, kernel access is
the backends. `down` is the same path with an empty desired state, so it needs no
store and removes exactly what naming says wggw owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Callable, Optional

from . import desired as desired_mod
from .backends import netlink, nft
from .errors import BackendError, VerifyError
from .model import State
from .plan import (AddAddress, AddRoute, AddRule, Change, ConfigureDevice, CreateDevice,
                   DelAddress, DeleteDevice, DeleteNft, DelRoute, DelRule, Observed,
                   RemovePeer, ReplaceNft, SetLink, SetSysctl, UpsertPeer, plan)

Echo = Optional[Callable[[str], None]]


@dataclass
class Result:
    desired: desired_mod.Desired
    observed: Observed
    changes: list[Change]


def observe(wg, extra_sysctls: tuple[str, ...] = ()) -> Observed:
    """Everything wggw owns on this host, as seen now."""
    names = wg.list_devices()
    devices = {}
    for name in names:
        state = wg.observe(name)
        if state is not None:
            devices[name] = state
    keys = tuple(desired_mod.SYSCTL_FORWARD.values()) + extra_sysctls
    return Observed(
        wg=devices,
        links=netlink.observe_links(names),
        addresses=netlink.observe_addresses(names),
        routes=netlink.observe_routes(),
        rules=netlink.observe_rules(),
        nft=nft.observe(),
        sysctls=netlink.read_sysctls(keys),
    )


def compute(state: State, wg, check_nft: bool = True) -> Result:
    want = desired_mod.compile_state(state, netlink.observe_facts())
    have = observe(wg)
    changes = plan(want, have)
    if check_nft and want.nft.digest:
        nft.load(want.nft.text, check_only=True)  # the kernel's own parser, nothing applied
    return Result(want, have, changes)


def _apply_peers(wg, device: str, batch: list[Change]) -> None:
    upsert = [c.peer for c in batch if isinstance(c, UpsertPeer)]
    remove = [c.public_key for c in batch if isinstance(c, RemovePeer)]
    wg.set_peers(device, upsert, remove)


def _apply_one(change: Change, wg, nl: netlink.Netlink) -> None:
    if isinstance(change, SetSysctl):
        netlink.write_sysctl(change.key, change.value)
    elif isinstance(change, CreateDevice):
        wg.create(change.name)
    elif isinstance(change, ConfigureDevice):
        wg.configure(change.name, change.private_key, change.listen_port)
    elif isinstance(change, SetLink):
        nl.set_link(change.spec)
    elif isinstance(change, (AddAddress, DelAddress)):
        nl.address("add" if isinstance(change, AddAddress) else "del", change.spec)
    elif isinstance(change, ReplaceNft):
        nft.load(change.spec.text)
    elif isinstance(change, DeleteNft):
        nft.delete()
    elif isinstance(change, AddRoute):
        nl.route("replace" if change.replace else "add", change.spec)
    elif isinstance(change, DelRoute):
        nl.route("del", change.spec)
    elif isinstance(change, (AddRule, DelRule)):
        nl.rule("add" if isinstance(change, AddRule) else "del", change.spec)
    elif isinstance(change, DeleteDevice):
        wg.delete(change.name)
    else:  # pragma: no cover - a new change type without an applier is a bug
        raise BackendError(f"no applier for {type(change).__name__}")


def apply_changes(changes: list[Change], wg, echo: Echo = None) -> None:
    """Apply in plan order; consecutive peer changes of one device are one transaction."""
    def peer_group(c: Change):
        return c.device if isinstance(c, (UpsertPeer, RemovePeer)) else None

    with netlink.Netlink() as nl:
        for device, group in groupby(changes, key=peer_group):
            batch = list(group)
            for change in batch:
                if echo:
                    echo(str(change))
            if device is not None:
                _apply_peers(wg, device, batch)
            else:
                for change in batch:
                    _apply_one(change, wg, nl)


def converge(state: State, wg, echo: Echo = None) -> Result:
    """Apply the plan for `state`, then observe again; leftovers are an error."""
    first = compute(state, wg)
    if first.changes:
        apply_changes(first.changes, wg, echo)
    second = compute(state, wg, check_nft=False)
    if second.changes:
        head = "; ".join(c.describe() for c in second.changes[:3])
        raise VerifyError(f"state still differs after apply ({len(second.changes)} changes left): {head}")
    return first


def teardown(wgs: list, echo: Echo = None) -> list[Change]:
    """Remove everything wggw owns (every backend given), without reading the store."""
    done: list[Change] = []
    empty = desired_mod.empty()
    for wg in wgs:
        changes = plan(empty, observe(wg))
        # Sysctls are host settings, not objects wggw created: `down` leaves them.
        changes = [c for c in changes if not isinstance(c, SetSysctl)]
        apply_changes(changes, wg, echo)
        done.extend(changes)
    return done
