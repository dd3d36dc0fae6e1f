"""Throwaway benchmark sites in network namespaces, and their complete teardown.

A site is a gateway namespace, an "internet" namespace and optionally a client namespace:

    client  eth0 198.51.100.2/24 ---- ul0 198.51.100.1/24  [gw]  uplink0 198.18.0.1/15 ---- eth0 198.19.255.254/15  [inet]

Tenant i has pool 100.(64+i/256).(i%256).0/24 (source addresses only, inside our namespaces) and
egress 198.18.(1+i/250).(i%250+1) (RFC 2544 range, on-link for inet, so inet answers only
source-NATed traffic). Every name carries the run's random suffix: namespaces `wb<run>-<site>-<role>`,
WireGuard interfaces `wb<run><n>` (wireguard-go sockets share /var/run/wireguard host-wide).
`Bench.close()` kills every process in our namespaces, deletes them, and removes the sockets and
wggw pid files of our interface names; it runs from a finally block and from atexit.
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

from wggw.backends import runfiles
from wggw.lab.netns import LabError, cmdline, run, wait_until

NETNS_DIR = Path("/run/netns")
WG_SOCKET_DIR = Path("/var/run/wireguard")
REPO = Path(__file__).resolve().parent.parent
GW_UPLINK, INET_ADDR = "198.18.0.1", "198.19.255.254"
GW_UNDERLAY, CLIENT_UNDERLAY = "198.51.100.1", "198.51.100.2"
LISTEN_PORT = 51820


def pool(i: int) -> str:
    return f"100.{64 + i // 256}.{i % 256}.0/24"


def egress(i: int) -> str:
    return f"198.18.{1 + i // 250}.{i % 250 + 1}"


def peer_addr(i: int, j: int) -> str:
    """Peer j of tenant i: .2, .3, ... (.1 is the gateway's own address in the pool)."""
    return f"100.{64 + i // 256}.{i % 256}.{2 + j}"


class Bench:
    """Owns every namespace, interface name and temp dir of one benchmark run."""

    def __init__(self) -> None:
        self.run_id = self._free_run_id()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"wggw-bench-{self.run_id}-"))
        self.namespaces: list[str] = []
        self.ifnames: set[str] = set()
        self._n = 0
        atexit.register(self.close)

    @staticmethod
    def _free_run_id() -> str:
        for _ in range(32):
            rid = secrets.token_hex(3)
            if not any(NETNS_DIR.glob(f"wb{rid}-*")):
                return rid
        raise LabError("no free run id")

    def ifname(self) -> str:
        self._n += 1
        name = f"wb{self.run_id}{self._n}"
        self.ifnames.add(name)
        return name

    def add_ns(self, site: str, role: str) -> str:
        name = f"wb{self.run_id}-{site}-{role}"
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def site(self, label: str, client: bool = False) -> "Site":
        return Site(self, label, client)

    def del_ns(self, name: str) -> list[str]:
        """Kill what runs in `name`, delete it, and forget it; returns problems."""
        notes = [_kill(pid, name) for pid in _pids(name)]
        try:
            inode = runfiles.netns_inode(str(NETNS_DIR / name))
        except OSError:
            inode = None
        res = run(["ip", "netns", "del", name], check=False)
        if res.returncode == 0 or not (NETNS_DIR / name).exists():
            if inode is not None:
                runfiles.forget_netns(inode)  # wggw's sysctl record of that namespace
            if name in self.namespaces:
                self.namespaces.remove(name)
        else:
            notes.append(f"ip netns del {name}: {res.stderr.strip()}")
        return [n for n in notes if n]

    def close(self) -> list[str]:
        """Remove everything of this run; idempotent; returns problems (also printed)."""
        notes: list[str] = []
        for name in list(self.namespaces):
            notes += self.del_ns(name)
        for ifname in sorted(self.ifnames):
            notes += forget_ifname(ifname)
        if self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
        if not self.namespaces:
            atexit.unregister(self.close)
        if notes:
            print("benchmark teardown: " + "; ".join(notes), file=sys.stderr)
        return notes

    def leftovers(self) -> list[str]:
        """Anything of this run still on the host (for the cleanup check)."""
        out = [str(p) for p in NETNS_DIR.glob(f"wb{self.run_id}-*")]
        out += [str(p) for p in WG_SOCKET_DIR.glob(f"wb{self.run_id}*")]
        out += [str(p) for p in runfiles.runtime_dir().glob(f"wb{self.run_id}*")]
        out += [f"pid {pid}" for pid in _all_pids() if f"wb{self.run_id}" in cmdline(pid)]
        return out + ([str(self.workdir)] if self.workdir.exists() else [])


def forget_ifname(ifname: str) -> list[str]:
    """Remove the socket and wggw pid/log files of a WireGuard interface name of ours."""
    runfiles.forget_interface(ifname)
    return []


def _pids(ns: str) -> list[int]:
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _kill(pid: int, ns: str) -> str:
    """SIGTERM (then SIGKILL) a process that runs inside one of our namespaces."""
    cmd = cmdline(pid).strip()
    for sig, timeout in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return ""
        try:
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        except ChildProcessError:
            pass
        try:
            wait_until(lambda: _gone(pid), timeout=timeout, interval=0.02, what=f"pid {pid} ({cmd})")
            return ""
        except LabError:
            continue
    return f"pid {pid} in {ns} survived SIGKILL: {cmd}"


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class Site:
    """gw + inet (+ client) namespaces wired as in the module docstring."""

    def __init__(self, bench: Bench, label: str, client: bool) -> None:
        self.bench, self.label = bench, label
        self.gw = bench.add_ns(label, "gw")
        self.inet = bench.add_ns(label, "inet")
        self.client = bench.add_ns(label, "cl") if client else None
        self.ifname = bench.ifname()
        self.dir = bench.workdir / label
        self.dir.mkdir(mode=0o700)
        ip = lambda ns, *a: run(["ip", "-n", ns, *a])  # noqa: E731
        ip(self.gw, "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", self.inet)
        ip(self.gw, "addr", "add", f"{GW_UPLINK}/15", "dev", "uplink0")
        ip(self.inet, "addr", "add", f"{INET_ADDR}/15", "dev", "eth0")
        for ns, dev in ((self.gw, "uplink0"), (self.inet, "eth0")):
            ip(ns, "link", "set", dev, "up")
        ip(self.gw, "route", "add", "default", "via", INET_ADDR, "dev", "uplink0")
        if self.client:
            ip(self.gw, "link", "add", "ul0", "type", "veth", "peer", "name", "eth0", "netns", self.client)
            ip(self.gw, "addr", "add", f"{GW_UNDERLAY}/24", "dev", "ul0")
            ip(self.client, "addr", "add", f"{CLIENT_UNDERLAY}/24", "dev", "eth0")
            ip(self.gw, "link", "set", "ul0", "up")
            ip(self.client, "link", "set", "eth0", "up")

    def close(self) -> None:
        for ns in (self.client, self.inet, self.gw):
            if ns:
                self.bench.del_ns(ns)
        forget_ifname(self.ifname)
