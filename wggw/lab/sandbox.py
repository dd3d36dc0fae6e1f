"""What one lab run owns on the host, and its complete removal: namespaces, processes,
WireGuard interface names, a temp dir.

Every lab of the project is built on this (the demo's and netns tests' `Lab`, the benchmark's
sites, the backend contract tests' environments), so "remove exactly what this run created, also
after a failure, any number of times" is written once. Names carry one random suffix per run,
unique on the host: another run (or another wggw) beside this one is never touched.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TypeVar

from wggw.backends import runfiles
from wggw.lab.netns import LabError, Namespace, ProcessTable, cmdline, run, wait_until

NETNS_DIR = Path("/run/netns")
WG_SOCKET_DIR = Path("/var/run/wireguard")

NS = TypeVar("NS", bound=Namespace)


class Sandbox:
    """Namespaces `<prefix>-<label>-<suffix>`, interface names `<short><suffix><n>`, one temp
    dir."""

    def __init__(self, prefix: str = "wggw", short: str = "wl") -> None:
        self.prefix, self.short = prefix, short
        self.suffix = self._free_suffix()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-lab-{self.suffix}-"))
        self.procs = ProcessTable()
        self.namespaces: list[Namespace] = []
        self.ifnames: set[str] = set()  # WireGuard names whose socket/pid files teardown removes
        self.stopped: list[str] = []  # processes teardown had to stop (informational)
        self._n = 0
        atexit.register(self.close)

    def _free_suffix(self) -> str:
        for _ in range(32):
            suffix = secrets.token_hex(3)
            if not any(NETNS_DIR.glob(f"{self.prefix}-*-{suffix}")) and not any(
                WG_SOCKET_DIR.glob(f"{self.short}{suffix}*")
            ):
                return suffix
        raise LabError("no free lab suffix")

    def ns_name(self, label: str) -> str:
        return f"{self.prefix}-{label}-{self.suffix}"

    def add_ns(self, label: str, cls: type[NS] = Namespace, **kw: object) -> NS:  # type: ignore[assignment]
        """A new namespace with loopback up, recorded before anything else can fail."""
        name = self.ns_name(label)
        run(["ip", "netns", "add", name])
        ns = cls(name, self.procs, self.workdir, **kw)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def ifname(self) -> str:
        """A WireGuard interface name of this run (at most 15 characters, unique on the host)."""
        self._n += 1
        name = f"{self.short}{self.suffix}{self._n}"
        self.ifnames.add(name)
        return name

    def own_ifname(self, ifname: str) -> None:
        self.ifnames.add(ifname)

    def del_ns(self, ns: Namespace) -> list[str]:
        """Stop what runs in `ns`, delete it and wggw's record of it; returns problems."""
        notes = self._stop_strays(ns)
        try:
            inode: int | None = runfiles.netns_inode(str(NETNS_DIR / ns.name))
        except OSError:
            inode = None
        res = run(["ip", "netns", "del", ns.name], check=False)
        if res.returncode == 0 or not (NETNS_DIR / ns.name).exists():
            if ns in self.namespaces:
                self.namespaces.remove(ns)
            if inode is not None:
                runfiles.forget_netns(inode)  # wggw's sysctl record of that namespace
        else:
            notes.append(f"ip netns del {ns.name}: {res.stderr.strip()}")
        return notes

    def close(self) -> list[str]:
        """Remove everything of this run; idempotent; returns (and prints) problems."""
        notes = self.procs.stop_all()
        for ns in list(self.namespaces):
            notes += self.del_ns(ns)
        for ifname in sorted(self.ifnames):
            runfiles.forget_interface(ifname)  # socket, and wggw's pid/log of that interface
        if self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
        if not self.namespaces:
            atexit.unregister(self.close)
        if notes:
            print(f"{self.prefix} lab teardown: " + "; ".join(notes), file=sys.stderr)
        return notes

    def leftovers(self) -> list[str]:
        """Anything of this run still on the host (for cleanup checks)."""
        out = [str(p) for p in NETNS_DIR.glob(f"{self.prefix}-*-{self.suffix}")]
        for name in self.ifnames:
            out += [
                str(p)
                for p in (
                    WG_SOCKET_DIR / f"{name}.sock",
                    runfiles.pid_file(name),
                    runfiles.log_file(name),
                )
                if p.exists()
            ]
        marks = (f"{self.short}{self.suffix}", f"-{self.suffix}")
        out += [f"pid {pid}" for pid in _all_pids() if any(m in cmdline(pid) for m in marks)]
        return out + ([str(self.workdir)] if self.workdir.exists() else [])

    def _stop_strays(self, ns: Namespace) -> list[str]:
        """Stop processes still running in our namespace that we did not start ourselves
        (e.g. a wireguard-go wggw started before a test failed before `wggw down`): they live in
        a namespace this run created, so they are this run's, and they would keep it alive.
        Returns the ones that survived SIGKILL."""
        notes = []
        for pid in ns.pids():
            cmd = cmdline(pid)
            if not cmd or pid == os.getpid():
                continue
            argv = cmd.split()
            if argv and argv[0].endswith("wireguard-go") and len(argv) > 1:
                self.ifnames.add(argv[-1])
            self.stopped.append(f"pid {pid} in {ns.name}: {cmd.strip()}")
            if not terminate(pid):
                notes.append(f"pid {pid} in {ns.name} survived SIGKILL: {cmd.strip()}")
        return notes


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def terminate(pid: int) -> bool:
    """SIGTERM a process we may not be able to wait on, then SIGKILL, bounded; False if it
    survived both."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        try:
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        except ChildProcessError:
            pass
        try:
            wait_until(lambda: gone(pid), timeout=3.0, interval=0.02, what=f"pid {pid} to exit")
            return True
        except LabError:
            continue
    return False


def gone(pid: int) -> bool:
    """True once the process is gone or only waits to be reaped by its parent."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
