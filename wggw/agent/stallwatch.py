"""Notice that the agent's process was frozen and runs again (SIGSTOP/SIGCONT, a stalled or
suspended VM), however short the freeze and whatever the loop was waiting for.

A daemon thread ticks every STEP seconds. A tick that comes much later than asked, while the
process hardly ran, means every thread was stopped: it adds the seconds lost and wakes the
loop through an eventfd that sits in the loop's selector (`fileno`). The loop then calls
`take()` and kicks what this gateway still holds as master (agent/ha.py, HaAgent.resumed).

Why a thread: the loop's own `select()` cannot tell. Its timeout is a deadline on the
monotonic clock, so a freeze that ends before that deadline (the agent often waits seconds)
leaves no trace in when it returns.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

STEP = 0.25  # s between ticks: 4 wake-ups a second, a few microseconds of CPU each
# A tick this much later than asked is a freeze. Shorter than the quickest takeover it matters
# for (VRRP at the default 0.5 s adverts: 3 missed adverts + skew, ~1.6 s), so a freeze long
# enough to have moved the addresses is never missed; longer than a busy host's hiccups.
STALL_AFTER = 1.0


def clock() -> float:
    """CLOCK_BOOTTIME: monotonic like CLOCK_MONOTONIC (no wall-clock steps), but it also
    counts a system suspend (a suspended VM or host), which CLOCK_MONOTONIC skips: after a
    suspend the standby has taken over just as after a SIGSTOP."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def stalled(lost: float, cpu: float, after: float = STALL_AFTER) -> bool:
    """Was a tick `lost` seconds late, during which the process used `cpu` seconds, a freeze?
    Late alone is not enough: the tick also waits for the GIL, which the main thread may
    hold for a second in one C call (a full collection at 50,000 peers). Then the process
    ran all along. A frozen process, or one the host did not schedule at all, did not run."""
    return lost > after and cpu < lost / 2


class StallWatch:
    """The ticking thread and its eventfd. `start()`, register it in the selector, `take()`
    when it is readable, `close()` at the end."""

    def __init__(self, step: float = STEP, after: float = STALL_AFTER) -> None:
        self.step, self.after = step, after
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._lock = threading.Lock()
        self._lost = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wggw-stallwatch", daemon=True)

    def fileno(self) -> int:
        return self._fd

    def start(self) -> StallWatch:
        self._thread.start()
        return self

    def take(self) -> float:
        """The seconds lost to freezes since the last call (0.0: none); clears the wake-up."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._fd)
        with self._lock:
            lost, self._lost = self._lost, 0.0
        return lost

    def close(self) -> None:
        self._stopping = True
        if self._thread.is_alive():
            self._thread.join(timeout=4 * self.step + 1.0)
        if not self._thread.is_alive():  # else it may still write: leave the fd to the exit
            os.close(self._fd)

    def _run(self) -> None:
        before, cpu = clock(), time.process_time()
        while not self._stopping:
            # time.sleep, not a timed Event.wait: it sleeps on CLOCK_MONOTONIC, so a step of
            # the wall clock can neither stretch a tick nor pass for a freeze.
            time.sleep(self.step)
            now, cpu_now = clock(), time.process_time()
            lost = now - before - self.step
            if stalled(lost, cpu_now - cpu, self.after):
                with self._lock:
                    self._lost += lost
                os.eventfd_write(self._fd, 1)
            before, cpu = now, cpu_now
