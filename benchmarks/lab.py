"""Throwaway benchmark sites in network namespaces, and their complete teardown.

A site is a gateway namespace, an "internet" namespace and optionally a client namespace:

    client  eth0 198.51.100.2/24 ---- ul0 198.51.100.1/24  [gw]
            [gw]  uplink0 198.18.0.1/15 ---- eth0 198.19.255.254/15  [inet]

Tenant i has pool 100.(64+i/256).(i%256).0/24 (source addresses only, inside our namespaces) and
egress 198.18.(1+i/250).(i%250+1) (RFC 2544 range, on-link for inet, so inet answers only
source-NATed traffic). Ownership and teardown are wggw.lab.sandbox's, as for every lab of the
project: namespaces `wb-<site>-<role>-<run>`, WireGuard interfaces `wb<run><n>`; `Bench.close()`
(from a finally block and from atexit) removes exactly what this run created.
"""

from __future__ import annotations

from pathlib import Path

from wggw.backends import runfiles
from wggw.lab.netns import run
from wggw.lab.sandbox import Sandbox

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


def compiled(checkout: Path) -> None:
    """Byte-compile the checkout's wggw package, as installing it does: every command the
    benchmark times then starts as an installed wggw would. Without this, a shell with
    PYTHONDONTWRITEBYTECODE set (or a fresh checkout) compiles each changed module from
    source on every run (~20 ms per command for a handful of modules)."""
    import compileall

    compileall.compile_dir(str(checkout / "wggw"), quiet=1)


class Bench:
    """Owns every namespace, interface name and temp dir of one benchmark run (a wggw.lab
    Sandbox: the same ownership and teardown as the demo's and the tests' labs)."""

    def __init__(self) -> None:
        compiled(REPO)
        self.box = Sandbox(prefix="wb", short="wb")
        self.run_id = self.box.suffix
        self.workdir = self.box.workdir

    @property
    def namespaces(self) -> list[str]:
        return [ns.name for ns in self.box.namespaces]

    def ifname(self) -> str:
        return self.box.ifname()

    def add_ns(self, site: str, role: str) -> str:
        return self.box.add_ns(f"{site}-{role}").name

    def site(self, label: str, client: bool = False) -> Site:
        return Site(self, label, client)

    def del_ns(self, name: str) -> list[str]:
        """Kill what runs in `name`, delete it, and forget it; returns problems."""
        return [n for ns in self.box.namespaces if ns.name == name for n in self.box.del_ns(ns)]

    def close(self) -> list[str]:
        """Remove everything of this run; idempotent; returns problems (also printed)."""
        return self.box.close()

    def leftovers(self) -> list[str]:
        """Anything of this run still on the host (for the cleanup check)."""
        return self.box.leftovers()


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
        ip(
            self.gw,
            "link",
            "add",
            "uplink0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.inet,
        )
        ip(self.gw, "addr", "add", f"{GW_UPLINK}/15", "dev", "uplink0")
        ip(self.inet, "addr", "add", f"{INET_ADDR}/15", "dev", "eth0")
        for ns, dev in ((self.gw, "uplink0"), (self.inet, "eth0")):
            ip(ns, "link", "set", dev, "up")
        ip(self.gw, "route", "add", "default", "via", INET_ADDR, "dev", "uplink0")
        if self.client:
            ip(
                self.gw,
                "link",
                "add",
                "ul0",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.client,
            )
            ip(self.gw, "addr", "add", f"{GW_UNDERLAY}/24", "dev", "ul0")
            ip(self.client, "addr", "add", f"{CLIENT_UNDERLAY}/24", "dev", "eth0")
            ip(self.gw, "link", "set", "ul0", "up")
            ip(self.client, "link", "set", "eth0", "up")

    def close(self) -> None:
        for ns in (self.client, self.inet, self.gw):
            if ns:
                self.bench.del_ns(ns)
        runfiles.forget_interface(self.ifname)
