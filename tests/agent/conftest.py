"""Fixtures of the agent tests: a root guard for the netns ones, and a running agent inside a
lab gateway (started as a real process in the gateway's namespace, stopped by PID; the lab,
wggw's objects and the agent's runtime files go away whatever the test did)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "netns"))  # gwhelper

from wggwtest import require_netns  # noqa: E402

from wggw.backends import runfiles  # noqa: E402
from wggw.lab.topology import Lab  # noqa: E402

METRICS_PORT = 9586


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel_tier: needs root, namespaces and the real kernel")


@pytest.fixture(scope="session")
def require_root() -> None:
    require_netns("the agent's netns tests", ("ip", "wg", "wireguard-go", "nft", "curl"))


class AgentProc:
    """`wggw agent` running in the lab's gateway namespace; its log is a file in the lab."""

    def __init__(self, lab: Lab, *args: str, env: dict | None = None) -> None:
        self.lab = lab
        self.log_path = lab.workdir / f"agent-{time.monotonic_ns()}.log"
        argv = lab.wggw_argv("agent", *args)
        with open(self.log_path, "w") as log:
            # `ip netns exec` execs Python in place: this PID is the agent's.
            self.proc = subprocess.Popen(argv, env=lab._py_env(env), stdout=log, stderr=log)
        self.wait_log("converged trigger=start", 20.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if text.count(needle) >= count:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}: {text}")
            time.sleep(0.05)
        raise AssertionError(f"agent log lacks {needle!r} x{count} after {timeout}s:\n{self.log()}")

    def metrics(self) -> str:
        return self.lab.gw.run(["curl", "-sf", f"http://127.0.0.1:{METRICS_PORT}/metrics"]).stdout

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def forget_agent_files() -> None:
    for name in ("agent.lock", "agent.sock"):
        (runfiles.runtime_dir() / name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def agent_lab(require_root: None) -> Iterator[tuple]:
    """A two-tenant gateway with both clients connected and an agent serving metrics."""
    import gwhelper

    runtime = runfiles.runtime_dir()
    before = set(runtime.glob("*")) if runtime.is_dir() else set()
    with Lab(("acme", "globex")) as lab:
        agents: list[AgentProc] = []
        try:
            gw = gwhelper.up(lab)
            # The speed trials repair each kind dozens of times a minute: no back-off for them.
            agents.append(
                AgentProc(
                    lab, "--metrics-listen", f"127.0.0.1:{METRICS_PORT}", "--max-repairs", "1000"
                )
            )
            yield lab, gw, agents
        finally:
            for agent in agents:
                agent.stop(signal.SIGKILL)
            forget_agent_files()
            lab.wggw("down", check=False)
    left = (set(runtime.glob("*")) if runtime.is_dir() else set()) - before
    assert not left, f"left in {runtime}: {sorted(p.name for p in left)}"
