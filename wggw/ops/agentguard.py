"""`wggw down` and a running agent: the agent would rebuild at once what `down` removes (or fight
it half-way), so `down` holds the agent lock while it tears down. An agent running in the same
runtime directory makes it refuse with one line (exit 75), unless `--stop-agent` asks that agent,
over its control socket, to stop; a clean stop leaves the data plane as it is, and `down` then
removes it. Holding the lock also keeps an agent from starting in the middle of a teardown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wggw.core.errors import BackendError, LockBusyError
from wggw.ops import agentclient
from wggw.ops.agentlock import AgentLock, holder_of

STOP_WAIT = 30.0  # the agent may be in the middle of a converge (seconds at 10,000 peers)
POLL = 0.05


@contextmanager
def without_agent(
    stop: bool, echo: Callable[[str], None] | None = None, wait: float = STOP_WAIT
) -> Iterator[None]:
    """Run the body holding the agent lock: no agent runs meanwhile, none can start."""
    lock = AgentLock(role="down")
    holder = lock.try_acquire()
    if holder is not None:
        pid, role = holder_of(holder)
        if role == "down":
            raise LockBusyError(f"another `wggw down` (pid {pid}) is running")
        if not stop:
            raise LockBusyError(
                f"a wggw agent is running (pid {pid}) and would rebuild what down "
                "removes: stop it first (systemctl stop wggw-agent) or pass --stop-agent"
            )
        _stop_agent(lock, pid, echo, time.monotonic() + wait)
    try:
        yield
    finally:
        lock.release()


def _stop_agent(
    lock: AgentLock, pid: str, echo: Callable[[str], None] | None, deadline: float
) -> None:
    """Ask the agent to stop, then take its lock once it has exited (both bounded)."""
    name = f"the wggw agent (pid {pid})"
    asked = False
    while time.monotonic() < deadline:
        if not asked:  # no socket yet: the agent is in its first converge, it listens after it
            reply = agentclient.request({"op": "stop"}, timeout=max(0.1, _left(deadline)))
            if reply is not None and not reply.get("ok"):
                raise BackendError(
                    f"{name} refused to stop: {reply.get('error', 'no reason given')}; "
                    "stop it yourself (systemctl stop wggw-agent)"
                )
            asked = reply is not None
        if lock.try_acquire() is None:
            if echo:
                echo(f"[#] stop {name}: it leaves the data plane as it is")
            return
        time.sleep(POLL)
    raise LockBusyError(f"{name} did not stop in time; nothing was removed")


def _left(deadline: float) -> float:
    return deadline - time.monotonic()
