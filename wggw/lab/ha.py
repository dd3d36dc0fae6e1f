"""The two-gateway HA lab: build, run processes in, break and mend, and always tear down.

Used by the HA netns test (tests/ha) and benchmark (benchmarks/ha.py). One run:

    clients (c..)  eth0 198.51.100.11+i ─┐                    ┌─ eth0 203.0.113.254 inet
                                          lan (bridge, sw ns)  wan (bridge, sw ns)   ::fe
    gwa underlay0 198.51.100.2 ──────────┤                    ├── uplink0 203.0.113.2 / ::2
    gwb underlay0 198.51.100.3 ──────────┘                    └── uplink0 203.0.113.3 / ::3

The floating endpoint (198.51.100.1) and the tenants' egress IPs are nobody's at start: keepalived
puts them on the active gateway. `inet` knows only its connected subnet, so it reaches an
egress IP wherever ARP/ND says it is and a tenant's pool never; its watcher (hawatch.py)
captures every source that reaches it. Each gateway is a host of its own: a network namespace
plus a private /run/wireguard (wireguard-go's socket directory is fixed and host-wide, and both
gateways run the same interface) and its own WGGW_RUN_DIR and state dir. `kill(gw, way)`
breaks the active gateway one of three ways and `mend(gw, way)` undoes it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wggw.lab.netns import LabError, Namespace, cmdline, run, wait_until
from wggw.lab.sandbox import Sandbox, gone
from wggw.lab.wg import Client

GATEWAYS = ("gwa", "gwb")
ENDPOINT_VIP = "198.51.100.1"
UNDERLAY = {"gwa": "198.51.100.2", "gwb": "198.51.100.3"}
UPLINK = {"gwa": ("203.0.113.2", "2001:db8:ffff::2"), "gwb": ("203.0.113.3", "2001:db8:ffff::3")}
INET_V4, INET_V6 = "203.0.113.254", "2001:db8:ffff::fe"
UNDERLAY_DEV, UPLINK_DEV, CLIENT_DEV, INET_DEV = "underlay0", "uplink0", "eth0", "eth0"
WAYS = ("links", "kill", "freeze")  # how the active gateway is broken
_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent
_RESERVED = {"sw", "inet", *GATEWAYS}
# Run a command with this gateway's own /run/wireguard (bind-mounted in a private mount
# namespace, inherited by everything the command starts, e.g. the agent's wireguard-go).
_PRIVATE_WG = 'mkdir -p /run/wireguard && mount --bind "$0" /run/wireguard && exec "$@"'


class GatewayHost(Namespace):
    """A gateway namespace whose commands see its private wireguard socket dir and env."""

    def __init__(self, name: str, procs, workdir: Path, *, host: str) -> None:
        super().__init__(name, procs, workdir)
        self.label = host
        self.home = workdir / host  # state dir, runtime dir, wireguard sockets, logs
        self.wg_dir = self.home / "wireguard"
        self.run_dir = self.home / "run"
        for d in (self.wg_dir, self.run_dir):
            d.mkdir(parents=True, mode=0o700)
        self.env: dict[str, str] = {"WGGW_RUN_DIR": str(self.run_dir)}

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", _PRIVATE_WG,
                str(self.wg_dir), *argv]  # fmt: skip

    def run(self, cmd, check=True, timeout=10.0, env=None, input=None):
        full = {**os.environ, **self.env, **(env or {})}
        return super().run(self.wrap(cmd), check=check, timeout=timeout, env=full, input=input)

    def spawn(self, argv, *, marker, log, env=None, pipe_stdout=False):
        full = {**self.env, **(env or {})}
        return super().spawn(
            self.wrap(argv), marker=marker, log=log, env=full, pipe_stdout=pipe_stdout
        )


@dataclass
class Service:
    """A long-running process the lab starts in a gateway and restarts after `kill`."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    marker: str
    pid: int = 0
    pidfiles: tuple[Path, ...] = ()  # a SIGKILLed process leaves them; removed before a restart


@dataclass
class HaLab:
    clients: Sequence[str] = ("acme", "globex")
    box: Sandbox | None = None
    sw: Namespace | None = None
    inet: Namespace | None = None
    gws: dict[str, GatewayHost] = field(default_factory=dict)
    client_ns: dict[str, Client] = field(default_factory=dict)
    services: dict[tuple[str, str], Service] = field(default_factory=dict)
    frozen: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        bad = [c for c in self.clients if c in _RESERVED or not c.isalnum() or len(c) > 12]
        if bad or len(set(self.clients)) != len(self.clients) or len(self.clients) > 50:
            raise LabError(f"client roles must be unique, alphanumeric, not {_RESERVED}: {bad}")

    def __enter__(self) -> HaLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        assert self.box is not None, "lab not started"
        return self.box.workdir

    def gw(self, name: str) -> GatewayHost:
        return self.gws[name]

    def client(self, role: str) -> Client:
        return self.client_ns[role]

    # --- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.box = Sandbox("wggw", "wh")
        self.sw = self.box.add_ns("sw")
        for br in ("lan", "wan"):
            # No STP, no multicast snooping: a port forwards at once and VRRP adverts, gratuitous
            # ARP and unsolicited NA reach every port as on a plain switch.
            self.sw.ip("link", "add", br, "type", "bridge", "stp_state", "0",
                       "mcast_snooping", "0")  # fmt: skip
            self.sw.ip("link", "set", br, "up")
        for label in GATEWAYS:
            self._add_gateway(label)
        self.inet = self._plug("inet", "wan", INET_DEV, "inet")
        self.inet.ip("addr", "add", f"{INET_V4}/24", "dev", INET_DEV)
        self.inet.ip("addr", "add", f"{INET_V6}/64", "dev", INET_DEV, "nodad")
        for i, role in enumerate(self.clients):
            addr = f"198.51.100.{11 + i}"
            cl = self.box.add_ns(
                role, Client, role=role, underlay_addr=addr, underlay_dev=CLIENT_DEV
            )
            self._cable(cl, CLIENT_DEV, "lan", f"c{i}")
            cl.ip("addr", "add", f"{addr}/24", "dev", CLIENT_DEV)
            self.client_ns[role] = cl

    def _plug(self, label: str, bridge: str, dev: str, port: str) -> Namespace:
        assert self.box is not None
        ns: Namespace = self.box.add_ns(label)
        self._cable(ns, dev, bridge, port)
        return ns

    def _cable(self, ns: Namespace, dev: str, bridge: str, port: str) -> None:
        """A veth from `ns`'s `dev` to switch port `port` on `bridge`, both ends up."""
        assert self.sw is not None
        for scope in ("all", "default"):
            ns.sysctl(f"net.ipv6.conf.{scope}.accept_dad", 0)
        self.sw.ip("link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns.name)
        self.sw.ip("link", "set", port, "master", bridge, "up")
        ns.ip("link", "set", dev, "up")

    def _add_gateway(self, label: str) -> None:
        assert self.box is not None
        gw = self.box.add_ns(label, GatewayHost, host=label)
        self.gws[label] = gw
        self._cable(gw, UNDERLAY_DEV, "lan", f"{label}-l")
        self._cable(gw, UPLINK_DEV, "wan", f"{label}-u")
        gw.ip("addr", "add", f"{UNDERLAY[label]}/24", "dev", UNDERLAY_DEV)
        v4, v6 = UPLINK[label]
        gw.ip("addr", "add", f"{v4}/24", "dev", UPLINK_DEV)
        gw.ip("addr", "add", f"{v6}/64", "dev", UPLINK_DEV, "nodad")
        gw.ip("-4", "route", "add", "default", "via", INET_V4, "dev", UPLINK_DEV)
        gw.ip("-6", "route", "add", "default", "via", INET_V6, "dev", UPLINK_DEV)

    def mac(self, label: str) -> str:
        """The MAC of gateway `label`'s uplink (how `inet` tells who answers for an address)."""
        out = self.gw(label).ip("-br", "link", "show", UPLINK_DEV).stdout.split()
        return out[2].lower()

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """This checkout importable by the processes the lab starts."""
        path = os.environ.get("PYTHONPATH", "")
        return {"PYTHONPATH": f"{_REPO}{os.pathsep}{path}" if path else str(_REPO), **(extra or {})}

    # --- processes ---------------------------------------------------------------------------
    def start_service(
        self, label: str, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> Service:
        """Start `argv` in gateway `label` (its private env) and remember how, for `mend`."""
        svc = Service(list(argv), self.env(env), self.workdir / f"{label}-{name}.log", name)
        self.services[(label, name)] = svc
        self._spawn(label, svc)
        return svc

    def _spawn(self, label: str, svc: Service) -> None:
        proc = self.gw(label).spawn(svc.argv, marker=svc.argv[0], log=svc.log, env=svc.env)
        svc.pid = proc.pid

    def start_keepalived(self, label: str, conf: Path, pidfile: Path | None = None) -> Service:
        """A throwaway keepalived (VRRP only, in the foreground) on `conf`, with pid files of
        its own so it never meets another keepalived on the host (`pidfile`: where whoever
        reloads it looks, e.g. wggw's agent)."""
        home = self.gw(label).home
        pidfile = pidfile or home / "keepalived.pid"
        argv = ["keepalived", "--vrrp", "-n", "-l", "-D", "--no-syslog", "-f", str(conf),
                "-p", str(pidfile), "-r", str(home / "vrrp.pid")]  # fmt: skip
        svc = self.start_service(label, "keepalived", argv)
        svc.pidfiles = (pidfile, home / "vrrp.pid")
        return svc

    def start_script(self, ns: Namespace, name: str, script: str, *args: str) -> int:
        """Run one of the lab's scripts (hawatch, haprobe) in `ns`; wait for its `ready`."""
        log = self.workdir / f"{ns.name}-{name}.log"
        proc = ns.spawn([sys.executable, str(_HERE / script), *args], marker=script,
                        log=log, pipe_stdout=True)  # fmt: skip
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        buf = bytearray()

        def ready() -> bool:
            if proc.poll() is not None:
                raise LabError(f"{script} in {ns.name} exited: {log.read_text(errors='replace')}")
            buf.extend(proc.stdout.read() or b"")  # type: ignore[union-attr]
            return b"ready" in buf

        wait_until(ready, timeout=10.0, what=f"{script} in {ns.name}")
        return proc.pid

    def gateway_pids(self, label: str) -> list[int]:
        """What a gateway runs that a crash takes down: agent, keepalived (both processes),
        wireguard-go, scripts keepalived started."""
        names = ("keepalived", "wireguard-go", "wggw", "python")
        pids = []
        for pid in self.gw(label).pids():
            argv = cmdline(pid).split()
            if argv and any(os.path.basename(argv[0]).startswith(n) for n in names):
                pids.append(pid)
        return pids

    # --- breaking and mending ----------------------------------------------------------------
    def kill(self, label: str, way: str) -> tuple[float, float]:
        """Break gateway `label`: `links` pulls both its cables at the switch, `kill` SIGKILLs
        everything it runs, `freeze` SIGSTOPs it (the kernel still holds its addresses).
        Returns (time.monotonic) the instant of the first blow, what to measure from, and
        the instant the last one landed: only traffic sent after it proves a new path."""
        assert self.sw is not None
        if way not in WAYS:
            raise LabError(f"unknown way {way!r}: one of {WAYS}")
        if way == "links":
            argvs = [["ip", "-n", self.sw.name, "link", "set", f"{label}-{side}", "down"]
                     for side in ("l", "u")]  # fmt: skip
            t0 = time.monotonic()
            for argv in argvs:
                run(argv)
            return t0, time.monotonic()
        sig = signal.SIGKILL if way == "kill" else signal.SIGSTOP
        pids = self.gateway_pids(label)  # looked up before the clock starts
        t0 = time.monotonic()
        for pid in pids:
            _signal(pid, sig)
        done = time.monotonic()
        if way == "freeze":
            self.frozen.update(pids)
        return t0, done

    def mend(self, label: str, way: str) -> None:
        """Undo `kill(label, way)`: cables back, processes restarted or thawed."""
        assert self.sw is not None
        if way == "links":
            for port in (f"{label}-l", f"{label}-u"):
                self.sw.ip("link", "set", port, "up")
        elif way == "freeze":
            for pid in sorted(self.frozen):
                _signal(pid, signal.SIGCONT)
            self.frozen.clear()
        elif way == "kill":
            for (gw, _name), svc in self.services.items():
                if gw == label:
                    wait_until(lambda s=svc: gone(s.pid), timeout=5.0, what=f"{svc.marker} gone")
                    for path in svc.pidfiles:
                        # keepalived refuses to start beside a pid file whose process may live
                        # on as an unreaped zombie (our PID 1 need not reap orphans)
                        path.unlink(missing_ok=True)
                    self._spawn(label, svc)

    # --- teardown ----------------------------------------------------------------------------
    def close(self) -> list[str]:
        for pid in sorted(self.frozen):
            _signal(pid, signal.SIGCONT)  # a stopped process would ignore SIGTERM at teardown
        self.frozen.clear()
        if self.box is None:
            return []
        for cl in self.client_ns.values():
            if cl.tunnel:
                self.box.own_ifname(cl.tunnel.ifname)
                try:
                    cl.down_wireguard()
                except (LabError, OSError):
                    pass  # the namespace's deletion below takes the rest
        return self.box.close()

    def leftovers(self) -> list[str]:
        return self.box.leftovers() if self.box else []


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # exited on its own meanwhile


def sh(argv: Sequence[str], timeout: float = 10.0) -> str:
    """A host-side command's stdout (bounded)."""
    return run(list(argv), timeout=timeout).stdout
