"""ops/fleetwait.py without a store: which gateways are still missing, one wait for many
changes, the timeout's setting and its one line, and a wait bounded in polls and time."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from wggw.core.errors import FleetWaitError, ValidationError
from wggw.core.fleet import GatewayReport
from wggw.ops import fleetwait
from wggw.ops.fleetwait import Target

NOW = time.time()
OK = GatewayReport("gw1", 10, True, None, "1", "h1", 1, NOW - 9, NOW, NOW)


class Reports:
    """What `wait` reads of a store: `reports()`; each call may advance the reports."""

    def __init__(self, *rounds: list[GatewayReport]):
        self.rounds = list(rounds)
        self.calls = 0

    def reports(self) -> list[GatewayReport]:
        self.calls += 1
        return self.rounds[min(self.calls, len(self.rounds)) - 1]


def test_pending_names_who_is_behind_unhealthy_or_silent():
    target = Target(("gw1", "gw2"), 10)
    sick = replace(OK, gateway="gw2", healthy=False, error="uplink down")
    assert fleetwait.pending([OK, sick], target, NOW, healthy=False) == {}
    assert fleetwait.pending([OK, sick], target, NOW, healthy=True) == {"gw2": sick}
    assert fleetwait.pending([OK], target, NOW, healthy=False) == {"gw2": None}
    behind = replace(OK, generation=9)
    assert fleetwait.pending([behind], Target(("gw1",), 10), NOW, False) == {"gw1": behind}
    stale = replace(OK, reported_at=NOW - 3600)
    assert fleetwait.pending([stale], Target(("gw1",), 10), NOW, False) == {}
    assert fleetwait.pending([stale], Target(("gw1",), 10), NOW, True) == {"gw1": stale}


def test_merged_waits_for_every_gateway_at_the_newest_generation():
    assert fleetwait.merged([None, None]) is None
    got = fleetwait.merged([Target(("gw2",), 5), None, Target(("gw1", "gw2"), 7)])
    assert got == Target(("gw1", "gw2"), 7)


def test_timeout_setting(monkeypatch):
    monkeypatch.delenv(fleetwait.TIMEOUT_ENV, raising=False)
    assert fleetwait.timeout_from_env() == fleetwait.DEFAULT_TIMEOUT
    monkeypatch.setenv(fleetwait.TIMEOUT_ENV, "2.5")
    assert fleetwait.timeout_from_env() == 2.5
    for bad in ("0", "-1", "soon", "1e9"):
        monkeypatch.setenv(fleetwait.TIMEOUT_ENV, bad)
        with pytest.raises(ValidationError, match=fleetwait.TIMEOUT_ENV):
            fleetwait.timeout_from_env()


def test_wait_returns_once_reported_and_times_out_with_one_line():
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    store = Reports([], [replace(OK, generation=9)], [OK])
    got = fleetwait.wait(store, Target(("gw1",), 10), 5, clock=lambda: clock[0], sleep=sleep)
    assert got == {"gw1": OK} and store.calls == 3 and slept == [0.01, 0.02]
    clock[0], slept[:] = 0.0, []
    fresh = replace(OK, generation=3, healthy=False, error="nft: boom", reported_at=time.time())
    store = Reports([fresh])  # reported just now: unhealthy, not stale
    with pytest.raises(FleetWaitError) as e:
        fleetwait.wait(store, Target(("gw1",), 10), 2, clock=lambda: clock[0], sleep=sleep)
    line = str(e.value)
    assert "\n" not in line and "within 2s" in line and "generation 3, unhealthy" in line
    assert "nft: boom" in line
    assert sum(slept) == pytest.approx(2) and max(slept) == fleetwait.MAX_POLL
    assert len(slept) <= 2 / fleetwait.MAX_POLL + 5  # bounded in count as well as in time
