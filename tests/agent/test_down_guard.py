"""`wggw down` and a running agent (wggw/ops/agentguard.py), without root: the agent's lock and
its control socket are the real ones (AgentLock, ControlServer), served from a thread; the CLI
with a real agent process is in test_agent_netns.py."""

from __future__ import annotations

import os
import threading
import time

import pytest

from wggw.agent.control import ControlServer
from wggw.core.errors import BackendError, LockBusyError
from wggw.ops.agentguard import without_agent
from wggw.ops.agentlock import AgentLock


class FakeAgent:
    """The agent's lock and control socket; answers `stop` with `answer` and then (if
    `exits`) releases the lock the way an exiting agent does."""

    def __init__(self, answer: dict, exits: bool = True, listen_after: float = 0.0) -> None:
        self.lock = AgentLock().acquire()
        self.answer, self.exits, self.listen_after = answer, exits, listen_after
        self.requests: list[dict] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        time.sleep(self.listen_after)  # as the agent does until its first converge is done
        server = ControlServer()
        try:
            deadline = time.monotonic() + 10
            while not self.done.is_set() and time.monotonic() < deadline:
                if server.serve_one(self._handle) is None:
                    time.sleep(0.01)
        finally:
            server.close()
            if self.exits:
                self.lock.release()

    def _handle(self, request: dict) -> dict:
        self.requests.append(request)
        if self.exits:
            self.done.set()
        return self.answer

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.lock.release()


def test_refuses_while_an_agent_runs_and_changes_nothing() -> None:
    agent = FakeAgent({"ok": True})
    body = []
    try:
        busy = rf"a wggw agent is running \(pid {os.getpid()}\).*--stop-agent"
        with pytest.raises(LockBusyError, match=busy) as info:
            with without_agent(False):
                body.append(1)
        assert info.value.exit_code == 75
        assert "\n" not in str(info.value)
        assert body == [] and agent.requests == []  # not torn down, the agent not asked
        assert agent.thread.is_alive()
    finally:
        agent.close()


def test_stop_agent_asks_it_to_stop_and_holds_the_lock_meanwhile() -> None:
    agent = FakeAgent({"ok": True}, listen_after=0.3)  # still converging when down starts
    lines: list[str] = []
    try:
        with without_agent(True, lines.append, wait=10):
            assert agent.requests == [{"op": "stop"}]
            agent.thread.join(5)  # it released its lock on the way out; now it is gone
            assert not agent.thread.is_alive()
            # while down tears down, no agent can start
            with pytest.raises(LockBusyError, match=r"`wggw down` \(pid \d+\) is tearing"):
                AgentLock().acquire()
        assert lines == [
            f"[#] stop the wggw agent (pid {os.getpid()}): it leaves the data plane as it is"
        ]
        AgentLock().acquire().release()  # down let go of the lock
    finally:
        agent.close()


def test_no_agent_no_question() -> None:
    lines: list[str] = []
    with without_agent(True, lines.append):
        pass
    assert lines == []
    AgentLock().acquire().release()


def test_an_agent_that_refuses_or_does_not_stop_is_reported() -> None:
    agent = FakeAgent({"ok": False, "error": "unknown request 'stop'"}, exits=False)
    try:
        with pytest.raises(BackendError, match="refused to stop: unknown request 'stop'"):
            with without_agent(True, wait=5):
                raise AssertionError("torn down while the agent runs")
    finally:
        agent.close()
    agent = FakeAgent({"ok": True}, exits=False)  # says yes, keeps running
    try:
        started = time.monotonic()
        with pytest.raises(LockBusyError, match="did not stop in time; nothing was removed"):
            with without_agent(True, wait=0.5):
                raise AssertionError("torn down while the agent runs")
        assert time.monotonic() - started < 5
    finally:
        agent.close()


def test_a_second_down_and_an_agent_starting_meanwhile_are_told_so() -> None:
    with without_agent(False):
        with pytest.raises(LockBusyError, match=rf"another `wggw down` \(pid {os.getpid()}\)"):
            with without_agent(True, wait=5):
                raise AssertionError("two teardowns at once")
        with pytest.raises(LockBusyError, match=rf"`wggw down` \(pid {os.getpid()}\) is tearing"):
            AgentLock().acquire()
