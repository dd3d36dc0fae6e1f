"""Timing helpers: run a command inside a namespace and return its wall time and peak RSS;
summarise repeated samples as median/min/max."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .lab import REPO

POLL = 0.0005


class CommandFailed(RuntimeError):
    pass


@dataclass
class Sample:
    seconds: float
    maxrss_mb: float
    stdout: str


def env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        "WGGW_BACKEND": "userspace",
    }


def in_ns(ns: str, argv: list[str], timeout: float = 600.0, ok=(0,)) -> Sample:
    """Run `argv` in `ns` (`ip netns exec` execs it, so the child's rusage is the command's)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env(),
            cwd=REPO,
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                raise CommandFailed(f"timed out after {timeout}s: {' '.join(argv)}")
            time.sleep(POLL)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode not in ok:
        raise CommandFailed(
            f"{' '.join(argv)} in {ns}: exit {proc.returncode}\n{stdout[-2000:]}\n{stderr[-2000:]}"
        )
    return Sample(elapsed, usage.ru_maxrss / 1024, stdout)


def wggw(ns: str, state_dir: Path, *args: str, ok=(0,), timeout: float = 600.0) -> Sample:
    return in_ns(
        ns,
        [sys.executable, "-m", "wggw.cli.entry", "--state-dir", str(state_dir), *args],
        ok=ok,
        timeout=timeout,
    )


def naive(ns: str, *args: str) -> Sample:
    return in_ns(ns, [sys.executable, "-m", "benchmarks.naive", *args])


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "runs": [round(v, 6) for v in values],
    }


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
