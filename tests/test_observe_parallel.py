"""backends/parallel.both: the two reads run at once, both are waited for, and no failure
is lost (the device read's first: what the devices hold matters most to a plan)."""

from __future__ import annotations

import threading
import time

import pytest

from wggw.backends.parallel import both
from wggw.core.errors import BackendError


def test_both_run_at_once_and_both_results_come_back():
    started = threading.Barrier(2, timeout=5)  # each side waits for the other to start

    def side(value):
        def run():
            started.wait()
            return value

        return run

    assert both(side("devices"), side("host")) == ("devices", "host")


def test_a_failure_of_either_side_is_raised_after_both_ended():
    finished = []

    def slow_host():
        time.sleep(0.05)
        finished.append("host")
        return "host"

    def broken():
        raise BackendError("wireguard-go wg0: UAPI get failed")

    with pytest.raises(BackendError, match="UAPI get failed"):
        both(broken, slow_host)
    assert finished == ["host"]
    with pytest.raises(BackendError, match="UAPI get failed"):
        both(lambda: "devices", broken)
    with pytest.raises(BackendError, match="UAPI get failed"):
        both(broken, lambda: 1 / 0)  # both failed: the device read's failure
