"""Observe what wggw owns, plan, print or apply, re-observe and verify.

No logic of its own: compilation is `desired`, diffing is `plan`, kernel access is a
`System` (backends/system.py, or the fake in tests). `down` is the same path with an
empty desired state, so it needs no store and removes exactly what wggw owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from . import desired as desired_mod
from .errors import VerifyError
from .model import State
from .plan import Change, Observed, SetSysctl, plan

Echo = Optional[Callable[[str], None]]


@dataclass
class Result:
    desired: desired_mod.Desired
    observed: Observed
    changes: list[Change]
    facts: Optional[desired_mod.HostFacts] = None


def compute(state: State, system, check_nft: bool = True, previous: Optional[Result] = None) -> Result:
    """Plan only: nothing is changed (the nft text is checked by the kernel's parser).
    With `previous` (a plan of the same state), its compiled desired state is reused when
    the host facts are unchanged: compiling 10,000 peers costs ~0.2 s."""
    facts = system.facts()
    if previous is not None and previous.facts == facts:
        want = previous.desired
    else:
        want = desired_mod.compile_state(state, facts)
    have = system.observe()
    changes = plan(want, have)
    if check_nft and want.nft.digest:
        system.check_nft(want.nft.text)
    return Result(want, have, changes, facts)


def converge(state: State, system, echo: Echo = None) -> Result:
    """Apply the plan for `state`, then observe again; leftovers are an error."""
    first = compute(state, system)
    if first.changes:
        system.apply(first.changes, echo)
    second = compute(state, system, check_nft=False, previous=first)
    if second.changes:
        head = "; ".join(c.describe() for c in second.changes[:3])
        raise VerifyError(f"state still differs after apply ({len(second.changes)} changes left): {head}")
    return first


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
                echo(str(change))
        done.extend(restored)
    return done
