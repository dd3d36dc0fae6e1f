"""Fault suite (issue 9): real namespaces, wireguard-go, nft and packets. For every fault, alone
and while `apply` or `peer add --apply` runs: traffic from both tenants (v4, v6) during and after
the fault; not one request or packet may reach the internet host from any source but its
tenant's egress; `plan --detailed-exitcode` shows the drift (exit 2); `apply` repairs it; the
re-plan is empty; time to repair is measured. The figures are printed at the end of the run
(faultreport.py) and are what RELIABILITY.md shows.

One lab per module (about 7 s to build); each trial leaves it converged, and a trial that did
not is healed (or the lab rebuilt) before the next.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

import faultreport
import faulttrial
import pytest
from faultcatalog import FOREIGN_IP_RULE, PAIRS, ROAM, SINGLE, Fault
from faultlab import FaultLab, LabError
from wggwtest import require_netns

from wggw.backends import runfiles


class LabHolder:
    """The module's FaultLab: built on first use, healed when a trial left it dirty, rebuilt
    once if healing fails."""

    def __init__(self) -> None:
        self.fl: FaultLab | None = None
        self.dirty = False

    def get(self) -> FaultLab:
        if self.fl is None:
            self.fl = FaultLab().start()
        elif self.dirty:
            try:
                self.fl.heal()
            except LabError:
                self.close()
                self.fl = FaultLab().start()
        self.dirty = True  # until the trial says otherwise
        return self.fl

    def close(self) -> None:
        if self.fl is not None:
            fl, self.fl = self.fl, None
            fl.close()


@pytest.fixture(scope="module")
def labs(request: pytest.FixtureRequest) -> Iterator[LabHolder]:
    require_netns("the fault suite")
    faultreport.register(request.config)
    runtime = runfiles.runtime_dir()
    before = set(runtime.glob("*")) if runtime.is_dir() else set()
    holder = LabHolder()
    try:
        yield holder
    finally:
        holder.close()
    left = (set(runtime.glob("*")) if runtime.is_dir() else set()) - before
    assert not left, f"left in {runtime}: {sorted(p.name for p in left)}"


def _seed(name: str, variant: str) -> int:
    """Seeded per trial (WGGW_FAULTS_SEED shifts every seed): the concurrent fault's timing."""
    shift = int(os.environ.get("WGGW_FAULTS_SEED", "0"))
    return zlib.crc32(f"{name}/{variant}".encode()) % 1_000_000 + shift


def _cases() -> list:
    cases = []
    for fault in SINGLE:
        for variant in faulttrial.VARIANTS:
            marks = [pytest.mark.kernel_tier] if fault.kernel_tier and variant == "alone" else []
            cases.append(pytest.param(fault, variant, marks=marks, id=f"{fault.name}-{variant}"))
    for fault in [ROAM, *PAIRS]:
        marks = [pytest.mark.kernel_tier] if fault.kernel_tier else []
        cases.append(pytest.param(fault, "alone", marks=marks, id=f"{fault.name}-alone"))
    return cases


def _trial(labs: LabHolder, fault: Fault, variant: str) -> faulttrial.Row:
    """Run and record one trial. The peer a `peer add --apply` trial adds stays: the lab is
    converged with it (the re-plan says so), and removing it costs a second per trial."""
    row = faulttrial.run(labs.get(), fault, variant, _seed(fault.name, variant))
    faultreport.record(row.as_dict())
    info = row.as_dict()
    assert not row.error, f"the trial could not run: {info}"
    assert row.landed_while_running, f"the fault landed after the {variant} command ended: {info}"
    assert not row.concurrent_error, f"the concurrent command crashed: {info}"
    return row


@pytest.mark.parametrize("fault,variant", _cases())
def test_fault_fails_closed_is_detected_and_repaired(labs: LabHolder, fault: Fault, variant: str):
    row = _trial(labs, fault, variant)
    info = row.as_dict()
    assert row.leaked == 0, f"{row.leaked} of {row.tried} requests leaked: {info}"
    assert row.leaked_packets == 0, f"packets from wrong sources: {info}"
    assert row.detected, f"plan did not show the drift: {info}"
    assert row.apply_rc == 0 and row.repaired, f"apply did not repair: {info}"
    assert row.replan_rc == 0, f"re-plan after apply not empty: {info}"
    labs.dirty = False


@pytest.mark.parametrize("variant", [pytest.param(v) for v in faulttrial.VARIANTS])
def test_foreign_ip_rule_above_the_window_is_reported_not_touched(labs: LabHolder, variant: str):
    row = _trial(labs, FOREIGN_IP_RULE, variant)
    info = row.as_dict()
    assert row.leaked == 0 and row.leaked_packets == 0, info
    assert row.detected, f"`status --check` did not report the rule (exit, naming it): {info}"
    assert row.foreign_rule_kept, f"apply touched a rule wggw does not own: {info}"
    assert row.repaired, f"`status --check` still fails once the rule is gone: {info}"
    assert row.replan_rc == 0, info
    labs.dirty = False
