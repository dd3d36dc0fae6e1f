"""The freeze detector (agent/stallwatch.py) on a real process: a child runs it under a
`select()` that waits far longer than any freeze, as the agent's loop does, and is frozen with
real SIGSTOP/SIGCONT. Its wake-up must come right after the thaw, with the time lost; a freeze
shorter than the threshold, and a main thread that holds the GIL, must not count."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from wggw.agent import stallwatch
from wggw.agent.stallwatch import STALL_AFTER, STEP, clock

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))

CHILD = """
import selectors
from wggw.agent.stallwatch import StallWatch, clock
watch = StallWatch().start()
sel = selectors.DefaultSelector()
sel.register(watch, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for _key, _ in sel.select(timeout=600):  # the loop's wait: much longer than the freeze
        print(f"stall {watch.take():.3f} {clock():.3f}", flush=True)
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert _line(proc, 10 * SCALE) == "ready"
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)  # a stopped child would not die of SIGKILL at once
        proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def _line(proc: subprocess.Popen, timeout: float) -> str | None:
    """The child's next line within `timeout` seconds, or None."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else None


def _freeze(proc: subprocess.Popen, seconds: float) -> float:
    """SIGSTOP for `seconds`; returns the instant of the SIGCONT (stallwatch.clock)."""
    proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        proc.send_signal(signal.SIGCONT)
    return clock()


def test_a_freeze_within_the_loops_wait_is_reported_right_after_the_resume(
    child: subprocess.Popen,
) -> None:
    time.sleep(2 * STEP)  # a few ticks first: nothing to report while the child just runs
    freeze = 2.0
    thawed = _freeze(child, freeze)
    line = _line(child, 5 * SCALE)
    assert line is not None and line.startswith("stall "), line
    lost, woke = (float(x) for x in line.split()[1:])
    # The tick that spanned the freeze lost the freeze less the part of one step it had slept.
    assert freeze - STEP - 0.1 <= lost <= freeze + 0.5 * SCALE, line
    assert woke - thawed <= (STEP + 0.5) * SCALE, (woke, thawed)  # not at the select's end
    assert _line(child, 1.0) is None  # one wake-up per freeze


def test_a_freeze_shorter_than_the_threshold_is_not_reported(child: subprocess.Popen) -> None:
    _freeze(child, STALL_AFTER / 3)
    assert _line(child, 1.5) is None
    _freeze(child, STALL_AFTER + 1.0)  # the same child still sees a real one
    line = _line(child, 5 * SCALE)
    assert line is not None and line.startswith("stall "), line


def test_late_ticks_while_the_process_ran_are_not_a_freeze() -> None:
    # Late because the main thread held the GIL in one long C call: the process used the CPU.
    assert not stallwatch.stalled(lost=1.4, cpu=1.4)
    # Frozen (SIGSTOP, a suspended VM) or not scheduled at all: almost no CPU meanwhile.
    assert stallwatch.stalled(lost=1.4, cpu=0.01)
    assert not stallwatch.stalled(lost=STALL_AFTER - 0.1, cpu=0.0)  # a hiccup, not a freeze
