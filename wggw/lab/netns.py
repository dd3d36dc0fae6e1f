"""Lab building blocks: one network namespace, the processes started in it, and bounded probes.

Part of the test/demo harness (`wggw.lab.topology`), not of wggw's data plane: running `ip`,
`ping` and python subprocesses here is deliberate, it is how an operator would poke at a host by
hand. Every call has a timeout and every loop a bound; probes only go to addresses the lab
created.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit


class LabError(RuntimeError):
    """A lab step failed; the message names the step and carries the tool's output."""


class FetchError(LabError):
    """An HTTP GET from inside a namespace did not return a body."""


# Probes refuse anything else: the documentation ranges used for the pretend internet and
# underlay, plus the private/ULA ranges tenants' pools use inside the lab. The namespaces have
# no link to the host's namespace, so this is a second line of defence, not the first.
_ALLOWED_TARGETS = [
    ipaddress.ip_network(n)
    for n in (
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "127.0.0.0/8",
        "::1/128",
    )
]

# iputils-ping need not be installed; a tiny raw-socket echo does the job (run as a file, so it
# works whether or not wggw is importable by the interpreter).
_PING_SCRIPT = Path(__file__).with_name("ping.py")

# Fetch with python's urllib inside the namespace (no curl dependency), ignoring any proxy
# variables the caller's environment may carry: the lab must never leave its namespaces.
_FETCH_CODE = (
    "import sys, urllib.request as u\n"
    "o = u.build_opener(u.ProxyHandler({}))\n"
    "sys.stdout.write(o.open(sys.argv[1], timeout=float(sys.argv[2])).read().decode())\n"
)


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; on failure (if `check`) raise LabError with its output."""
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            input=input,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise LabError(
            f"exit {proc.returncode}: {' '.join(argv)}\n"
            f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}"
        )
    return proc


def check_target(addr: str) -> str:
    """Return `addr` if the lab may send traffic to it, else raise LabError."""
    ip = ipaddress.ip_address(addr.strip("[]"))
    if not any(ip in net for net in _ALLOWED_TARGETS):
        raise LabError(f"refusing to send traffic to {addr}: not a lab address")
    return addr


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str) -> None:
    """Poll `predicate` until true, at most `timeout` seconds; raise LabError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ProcessTable:
    """The processes the lab started: each is stopped by its PID, after checking it is still
    ours."""

    def __init__(self) -> None:
        self._procs: dict[int, tuple[subprocess.Popen, str]] = {}

    def add(self, proc: subprocess.Popen, marker: str) -> None:
        self._procs[proc.pid] = (proc, marker)

    def pids(self) -> list[int]:
        return list(self._procs)

    def stop(self, pid: int, timeout: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; only if /proc/<pid>/cmdline still shows
        `marker`."""
        entry = self._procs.pop(pid, None)
        if entry is None:
            return
        proc, marker = entry
        if proc.poll() is not None:
            return
        # We are the parent, so the PID cannot be reused until we reap it; the cmdline check
        # guards against a bookkeeping bug sending signals to something that is not ours.
        if marker not in cmdline(pid):
            raise LabError(f"pid {pid} no longer runs {marker!r}; not signalling it")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def stop_all(self) -> list[str]:
        errors = []
        for pid in self.pids():
            try:
                self.stop(pid)
            except (LabError, OSError, subprocess.SubprocessError) as exc:
                errors.append(f"pid {pid}: {exc}")
        return errors


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


class Namespace:
    """One network namespace the lab created, with helpers that run inside it."""

    def __init__(self, name: str, procs: ProcessTable, workdir: Path) -> None:
        self.name = name
        self.procs = procs
        self.workdir = workdir

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def run(
        self,
        cmd: Sequence[str],
        check: bool = True,
        timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`ip netns exec NAME cmd...`, bounded by `timeout`."""
        return run(
            ["ip", "netns", "exec", self.name, *cmd],
            check=check,
            timeout=timeout,
            env=env,
            input=input,
        )

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ip -n NAME args...` (cheaper than `ip netns exec`, same effect for ip itself)."""
        return run(["ip", "-n", self.name, *args], check=check)

    def sysctl(self, key: str, value: str | int) -> None:
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def spawn(
        self,
        argv: Sequence[str],
        *,
        marker: str,
        log: Path,
        env: Mapping[str, str] | None = None,
        pipe_stdout: bool = False,
    ) -> subprocess.Popen:
        """Start a long-running process in the namespace, detached, recorded for teardown.

        Output goes to `log`; with `pipe_stdout` stdout is a pipe instead (for a readiness line).
        """
        full_env = {**os.environ, **(env or {})}
        with open(log, "ab") as out:
            # `ip netns exec` execs the command, so the PID we record is the process itself.
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe_stdout else out,
                stderr=out,
                env=full_env,
                start_new_session=True,
            )
        self.procs.add(proc, marker)
        return proc

    def fetch(self, url: str, timeout: float = 5.0) -> str:
        """GET `url` from inside the namespace; return the body stripped, or raise FetchError."""
        host = urlsplit(url).hostname or ""
        check_target(host)
        res = self.run(
            [sys.executable, "-c", _FETCH_CODE, url, str(timeout)], check=False, timeout=timeout + 5
        )
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise FetchError(f"{self.name}: GET {url} failed: {last}")
        return res.stdout.strip()

    def fetch_retry(
        self, url: str, attempts: int = 10, delay: float = 0.5, timeout: float = 2.0
    ) -> str:
        """`fetch` up to `attempts` times: a fresh tunnel may drop the packet that starts the
        handshake."""
        last: FetchError | None = None
        for i in range(max(1, attempts)):
            try:
                return self.fetch(url, timeout=timeout)
            except FetchError as exc:
                last = exc
                if i + 1 < attempts:
                    time.sleep(delay)
        raise FetchError(f"{last} (after {attempts} attempts)")

    def can_reach(self, addr: str, timeout: float = 1.0) -> bool:
        """One ICMP echo, bounded by `timeout` (1 s): True if a reply came back."""
        check_target(addr)
        res = self.run(
            [sys.executable, str(_PING_SCRIPT), addr, str(timeout)],
            check=False,
            timeout=timeout + 5,
        )
        if res.returncode not in (0, 1):
            raise LabError(f"{self.name}: ping {addr} failed: {res.stderr.strip()}")
        return res.returncode == 0

    def pids(self) -> list[int]:
        """Every process running in this namespace (ours or started by what we ran in it)."""
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]
