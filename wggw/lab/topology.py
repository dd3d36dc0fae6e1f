"""Build, and always tear down, a throwaway namespace topology to run wggw against real packets.

Used by the netns test suite and by the demo (`python -m wggw.lab.demo`). Topology (one run):

    client ns (one per client)          gw ns                               inet ns
    eth0 198.51.100.11+i/24 ---- ulI ] underlay0 (bridge) 198.51.100.1/24
                                       uplink0 203.0.113.1/24          ---- eth0 203.0.113.254/24
                                               2001:db8:ffff::1/64              2001:db8:ffff::fe/64
                                       default via .254 / ::fe                  HTTP :80,
                                                                                UDP echo :7

`inet` has routes only to the uplink subnet, so a packet from a tenant pool that was not
source-NATed to an address on the uplink gets no reply. Namespaces are named
`wggw-<role>-<6hex>` with one random suffix per run; `close()` (also via the context manager
and atexit) removes exactly what this run created and may be called any number of times.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from wggw.lab.netns import FetchError, LabError, Namespace, ProcessTable, run, wait_until
from wggw.lab.sandbox import NETNS_DIR, Sandbox
from wggw.lab.wg import Client, new_ifname, start_wireguard_go, stop_wireguard_go

__all__ = [
    "Lab",
    "Namespace",
    "Client",
    "LabError",
    "FetchError",
    "ProcessTable",
    "new_ifname",
    "start_wireguard_go",
    "stop_wireguard_go",
    "NETNS_DIR",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

# --- Addressing plan (documentation ranges only) ------------------------------------------------
UPLINK_DEV = "uplink0"
UNDERLAY_DEV = "underlay0"
CLIENT_DEV = "eth0"
INET_DEV = "eth0"
GW_UPLINK_V4, GW_UPLINK_V6 = "203.0.113.1", "2001:db8:ffff::1"
INET_V4, INET_V6 = "203.0.113.254", "2001:db8:ffff::fe"
GW_UNDERLAY_V4 = "198.51.100.1"
CLIENT_UNDERLAY_BASE = 11  # client i gets 198.51.100.(11 + i)
INET_URL_V4, INET_URL_V6 = f"http://{INET_V4}/", f"http://[{INET_V6}]/"

_ROLE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_HTTP_READY_TIMEOUT = 10.0


class Lab:
    """A gateway, an internet host and `clients` client namespaces; see the module docstring."""

    def __init__(self, clients: int | Sequence[str] = ("acme", "globex")) -> None:
        roles = [f"c{i}" for i in range(clients)] if isinstance(clients, int) else list(clients)
        for role in roles:
            if not _ROLE_RE.match(role) or role in ("gw", "inet"):
                raise LabError(f"client role {role!r}: want [a-z][a-z0-9]{{0,11}}, not gw/inet")
        if len(set(roles)) != len(roles) or len(roles) > 200:
            raise LabError(f"client roles must be unique and at most 200: {roles}")
        self.roles = roles
        self.box: Sandbox | None = None  # what this run owns on the host (built by start())
        self.gw: Namespace | None = None
        self.inet: Namespace | None = None
        self.clients: dict[str, Client] = {}
        self._started = False
        self.teardown_notes: list[str] = []

    @property
    def suffix(self) -> str:
        return self.box.suffix if self.box else ""

    @property
    def workdir(self) -> Path | None:
        return self.box.workdir if self.box else None

    @property
    def procs(self) -> ProcessTable:
        assert self.box is not None, "lab not started"
        return self.box.procs

    @property
    def namespaces(self) -> list[Namespace]:
        return self.box.namespaces if self.box else []

    # --- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Lab:
        """Build the topology; on any failure undo what was built, then re-raise."""
        if self._started:
            raise LabError("lab already started")
        self._started = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        self.box = Sandbox("wggw", "wl")
        self.gw = self._add_ns("gw", Namespace)
        self.inet = self._add_ns("inet", Namespace)
        self._build_uplink()
        self._build_underlay()
        self._start_http()
        # The gateway's link-local addresses start tentative; until DAD finishes, neighbour
        # discovery on the uplink stalls and the first IPv6 packets are lost.
        wait_until(
            lambda: not self.gw.ip("-6", "addr", "show", "tentative").stdout.strip(),
            timeout=10.0,
            interval=0.1,
            what=f"IPv6 DAD in {self.gw.name}",
        )

    @property
    def state_dir(self) -> Path:
        """wggw's --state-dir for this run (created by wggw itself, inside the lab's temp dir)."""
        assert self.workdir is not None, "lab not started"
        return self.workdir / "state"

    @property
    def uplink_dev(self) -> str:
        return UPLINK_DEV

    @property
    def gw_underlay_ip(self) -> str:
        return GW_UNDERLAY_V4

    def client(self, role: str) -> Client:
        return self.clients[role]

    def ns_names(self) -> list[str]:
        return [ns.name for ns in self.namespaces]

    # --- building ----------------------------------------------------------------------------
    def _add_ns(self, label: str, cls: type, **kw: object) -> Namespace:
        assert self.box is not None
        ns: Namespace = self.box.add_ns(label, cls, **kw)
        if label != "gw":
            # Only the gateway keeps IPv6 duplicate address detection: it is wggw's host and its
            # egress addresses should behave as in production. Elsewhere DAD only delays the
            # first packets of every run by a second or two.
            for scope in ("all", "default"):
                ns.sysctl(f"net.ipv6.conf.{scope}.accept_dad", 0)
        return ns

    def _build_uplink(self) -> None:
        gw, inet = self.gw, self.inet
        assert gw and inet
        gw.ip(
            "link", "add", UPLINK_DEV, "type", "veth", "peer", "name", INET_DEV, "netns", inet.name
        )
        # nodad: these addresses are unique by construction; DAD would only delay the first packets.
        for ns, dev, v4, v6 in (
            (gw, UPLINK_DEV, GW_UPLINK_V4, GW_UPLINK_V6),
            (inet, INET_DEV, INET_V4, INET_V6),
        ):
            ns.ip("addr", "add", f"{v4}/24", "dev", dev)
            ns.ip("addr", "add", f"{v6}/64", "dev", dev, "nodad")
            ns.ip("link", "set", dev, "up")
        gw.ip("-4", "route", "add", "default", "via", INET_V4, "dev", UPLINK_DEV)
        gw.ip("-6", "route", "add", "default", "via", INET_V6, "dev", UPLINK_DEV)
        # inet deliberately gets no default route and no route to any pool: only the
        # connected uplink subnets, so un-NATed tenant traffic never gets an answer.

    def _build_underlay(self) -> None:
        gw = self.gw
        assert gw
        gw.ip("link", "add", UNDERLAY_DEV, "type", "bridge")
        gw.ip("addr", "add", f"{GW_UNDERLAY_V4}/24", "dev", UNDERLAY_DEV)
        gw.ip("link", "set", UNDERLAY_DEV, "up")
        for i, role in enumerate(self.roles):
            addr = f"198.51.100.{CLIENT_UNDERLAY_BASE + i}"
            cl = self._add_ns(role, Client, role=role, underlay_addr=addr, underlay_dev=CLIENT_DEV)
            self.clients[role] = cl  # type: ignore[assignment]
            port = f"ul{i}"
            gw.ip("link", "add", port, "type", "veth", "peer", "name", CLIENT_DEV, "netns", cl.name)
            gw.ip("link", "set", port, "master", UNDERLAY_DEV, "up")
            cl.ip("addr", "add", f"{addr}/24", "dev", CLIENT_DEV)
            cl.ip("link", "set", CLIENT_DEV, "up")
            # The explicit host route to the gateway survives a full-tunnel default route.
            cl.ip("route", "add", f"{GW_UNDERLAY_V4}/32", "dev", CLIENT_DEV)

    def _start_http(self) -> None:
        inet = self.inet
        assert inet and self.workdir
        proc = inet.spawn(
            [sys.executable, "-m", "wggw.lab.httpd"],
            marker="wggw.lab.httpd",
            log=self.workdir / "inet-http.log",
            env=self._py_env(),
            pipe_stdout=True,
        )
        assert proc.stdout is not None
        # Bounded wait for the server's "ready" line (readline alone could block forever).
        os.set_blocking(proc.stdout.fileno(), False)
        buf = bytearray()

        def ready() -> bool:
            if proc.poll() is not None:
                raise LabError(f"HTTP server in {inet.name} exited: {self._log('inet-http.log')}")
            assert proc.stdout is not None  # started with stdout=PIPE
            buf.extend(proc.stdout.read() or b"")
            return b"ready" in buf

        wait_until(ready, timeout=_HTTP_READY_TIMEOUT, what=f"HTTP server in {inet.name}")

    def _py_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # Make this checkout importable even when wggw is not installed (plain `pytest`).
        path = os.environ.get("PYTHONPATH", "")
        return {
            **os.environ,
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT),
            **(extra or {}),
        }

    def _log(self, name: str) -> str:
        try:
            return (self.workdir / name).read_text(errors="replace").strip()  # type: ignore[operator]
        except OSError:
            return "(no log)"

    # --- wggw and WireGuard ------------------------------------------------------------------
    def wggw_argv(self, *args: str) -> list[str]:
        """The command line of the wggw CLI in the gateway namespace with this run's state dir
        (for callers that start it themselves, e.g. a long-running `wggw agent`)."""
        assert self.gw is not None, "lab not started"
        gw = ["ip", "netns", "exec", self.gw.name, sys.executable, "-m", "wggw.cli.entry"]
        return [*gw, "--state-dir", str(self.state_dir), *args]

    def wggw(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        ok_codes: Iterable[int] = (0,),
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the wggw CLI inside the gateway namespace with this run's state directory."""
        res = run(self.wggw_argv(*args), check=False, timeout=timeout, env=self._py_env(env))
        if check and res.returncode not in tuple(ok_codes):
            raise LabError(
                f"wggw {' '.join(args)}: exit {res.returncode}\n"
                f"stdout: {res.stdout.strip()}\nstderr: {res.stderr.strip()}"
            )
        return res

    def own_ifname(self, ifname: str) -> None:
        """Declare a WireGuard interface name as this run's, so teardown may remove its socket."""
        assert self.box is not None, "lab not started"
        self.box.own_ifname(ifname)

    def start_gateway_wireguard(self, ifname: str | None = None) -> tuple[str, int]:
        """wireguard-go in the gw namespace for tests without wggw; configure it with `wg set`."""
        assert self.gw is not None
        ifname = ifname or new_ifname("wgg")
        self.own_ifname(ifname)
        return ifname, start_wireguard_go(self.gw, ifname)

    # --- teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        """Remove everything this run created; safe to call repeatedly and after partial builds."""
        if self.box is None:
            return
        notes: list[str] = []
        for cl in self.clients.values():
            if cl.tunnel:
                self.box.own_ifname(cl.tunnel.ifname)
                try:
                    cl.down_wireguard()
                except (LabError, OSError, subprocess.SubprocessError) as exc:
                    notes.append(f"{cl.name}: {exc}")
        if notes:
            print("wggw lab teardown: " + "; ".join(notes), file=sys.stderr)
        problems = self.box.close()
        self.teardown_notes += notes + [f"stopped stray {s}" for s in self.box.stopped] + problems
        self.box.stopped.clear()
