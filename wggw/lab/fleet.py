"""A fleet of wggw gateways in network namespaces, sharing one throwaway PostgreSQL store:
built, and always torn down, for the fleet tests (issue 13) and anyone who wants to watch one.

    clients ---- sw: bridge `ul` (198.51.100.0/24: gwN at .N, client i at .(11+i))
                       |            |            |
                  gw1 underlay0  gw2 ...      gw3 ...      (each gateway is a "host": its own
                  gw1 uplink0    gw2 ...      gw3 ...       netns, /run/wireguard and run dir)
                       |            |            |
                 sw: bridge `up` (203.0.113.0/24, 2001:db8:ffff::/64: gwN at .N / ::N)
                       |
                 inet eth0 .254 / ::fe: HTTP :80 echoing the source it saw, UDP echo :7,
                 an nft table counting every packet to them per source address

    ops: a namespace with loopback only, where operators run the CLI against the store
         (anything they applied by mistake would land there, never on the host)

The store is a PostgreSQL cluster listening on a unix socket in a temp dir (pgcluster): a file,
so every namespace reaches it. The internet host routes each tenant's pools back to the gateway
the test says it is on (`route_back`), so a packet that left un-NATed is answered and recorded,
not a silent timeout; the per-source counters see every packet whether answered or not.

Why each gateway gets its own mount of /run/wireguard: wireguard-go keeps its UAPI socket there,
one directory for the whole host, while in a fleet the same interface (same name) runs on every
gateway its tenants are placed on. A bind mount of a per-gateway directory, made inside the
mount namespace `ip netns exec` creates, gives each gateway process its own, as separate hosts
have. WGGW_RUN_DIR is per gateway for the same reason (pid files, the agent's lock and socket).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wggw.lab.netns import LabError, Namespace, run, wait_until
from wggw.lab.pgcluster import Cluster
from wggw.lab.sandbox import Sandbox
from wggw.lab.wg import Client

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
UPLINK_DEV, UNDERLAY_DEV = "uplink0", "underlay0"
INET_V4, INET_V6 = "203.0.113.254", "2001:db8:ffff::fe"
WG_DIR = "/run/wireguard"
# In the gateway's own mount namespace (made by `ip netns exec`, slave to the host's, so
# nothing propagates back): its own wireguard-go socket directory, then the command.
_OWN_WG_DIR = 'mount --bind "$1" ' + WG_DIR + ' && shift && exec "$@"'
_ROLE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
CMD_TIMEOUT = 60 * float(os.environ.get("WGGW_TIME_SCALE", "1"))

CAPTURE_TABLE = "fleetcap"
CAPTURE_NFT = f"""table inet {CAPTURE_TABLE} {{
  set src4 {{ type ipv4_addr; size 65535; flags dynamic; counter; }}
  set src6 {{ type ipv6_addr; size 65535; flags dynamic; counter; }}
  chain input {{ type filter hook input priority -300; policy accept;
    meta l4proto {{ tcp, udp }} th dport {{ 80, 7 }} update @src4 {{ ip saddr }}
    meta l4proto {{ tcp, udp }} th dport {{ 80, 7 }} update @src6 {{ ip6 saddr }}
    icmp type echo-request update @src4 {{ ip saddr }}
    icmpv6 type echo-request update @src6 {{ ip6 saddr }}
  }}
}}
"""
_HTTP_LINE = re.compile(r'^(\S+) "GET /([a-z0-9]+)/([46])/(\d+) HTTP')


@dataclass
class GatewayHost:
    """One gateway of the fleet: its namespace and the directories a host of its own has."""

    name: str  # the gateway's name in the store (gw1, ...)
    index: int  # 1-based: its address on both segments
    ns: Namespace
    run_dir: Path  # its WGGW_RUN_DIR
    wg_dir: Path  # mounted on /run/wireguard for its processes

    @property
    def underlay_ip(self) -> str:
        return f"198.51.100.{self.index}"

    @property
    def uplink_v4(self) -> str:
        return f"203.0.113.{self.index}"

    @property
    def uplink_v6(self) -> str:
        return f"2001:db8:ffff::{self.index}"

    def argv(self, *cmd: str) -> list[str]:
        """`cmd` run as on this gateway's host (its netns and its /run/wireguard)."""
        return ["ip", "netns", "exec", self.ns.name, "sh", "-c", _OWN_WG_DIR, "sh",
                str(self.wg_dir), *cmd]  # fmt: skip

    def run(self, *cmd: str, check: bool = True, timeout: float = 10.0):
        return run(self.argv(*cmd), check=check, timeout=timeout)

    def wg_peers(self, ifname: str) -> set[str]:
        """The public keys of the peers on `ifname` here (empty if the interface is absent)."""
        res = self.run("wg", "show", ifname, "peers", check=False)
        return set(res.stdout.split()) if res.returncode == 0 else set()


class FleetLab:
    """Gateways, clients, an internet host and a PostgreSQL store; see the module docstring."""

    def __init__(self, gateways: Sequence[str] = ("gw1", "gw2", "gw3"), clients=()) -> None:
        roles = list(clients)
        for role in [*roles, *gateways]:
            if not _ROLE_RE.match(role) or role in ("sw", "inet", "ops"):
                raise LabError(f"lab role {role!r}: want [a-z][a-z0-9]{{0,11}}, not sw/inet/ops")
        if len(set(roles) | set(gateways)) != len(roles) + len(gateways) or len(roles) > 200:
            raise LabError(f"lab roles must be unique (at most 200 clients): {roles} {gateways}")
        self.gateway_names, self.roles = list(gateways), roles
        self.box: Sandbox | None = None
        self.pg: Cluster | None = None
        self.db_url = ""
        self.gateways: dict[str, GatewayHost] = {}
        self.clients: dict[str, Client] = {}
        self.sw: Namespace | None = None  # the switch: bridges `ul` and `up`
        self.inet: Namespace | None = None
        self.ops: Namespace | None = None
        self.agents: dict[str, subprocess.Popen] = {}
        self._http_offset = 0

    # --- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> FleetLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        assert self.box is not None, "lab not started"
        return self.box.workdir

    def start(self) -> FleetLab:
        """Build everything; on any failure undo what was built, then re-raise."""
        if self.box is not None:
            raise LabError("fleet lab already started")
        try:
            self.box = Sandbox("wggw", "wf")
            self._build()
            self.pg = Cluster()
            self.pg.start()
            self.db_url = self.pg.createdb()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> list[str]:
        """Stop the agents, remove the database cluster and everything of the sandbox; safe to
        call repeatedly and after a partial build. Returns the problems met."""
        notes: list[str] = []
        for gw in list(self.agents):
            try:
                self.stop_agent(gw)
            except (LabError, OSError, subprocess.SubprocessError) as exc:
                notes.append(f"agent {gw}: {exc}")
        for cl in self.clients.values():
            if cl.tunnel and self.box:
                self.box.own_ifname(cl.tunnel.ifname)
                try:
                    cl.down_wireguard()
                except (LabError, OSError, subprocess.SubprocessError) as exc:
                    notes.append(f"{cl.name}: {exc}")
        if self.pg is not None:
            try:
                self.pg.remove()
            except (OSError, subprocess.SubprocessError) as exc:
                notes.append(f"postgresql: {exc}")
            self.pg = None
        if self.box is not None:
            notes += self.box.close()
        return notes

    # --- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        box = self.box
        assert box is not None
        os.makedirs(WG_DIR, mode=0o755, exist_ok=True)  # the mount point; may not exist yet
        self.sw = self._quiet_ns("sw")
        self.inet = self._quiet_ns("inet")
        self.ops = self._quiet_ns("ops")
        for bridge in ("ul", "up"):
            self.sw.ip("link", "add", "name", bridge, "type", "bridge")
            self.sw.ip("link", "set", "dev", bridge, "up")
        self._plug(self.inet, "eth0", "up", "inet")
        self._addrs(self.inet, "eth0", INET_V4, INET_V6)
        for i, name in enumerate(self.gateway_names, start=1):
            self._add_gateway(name, i)
        for i, role in enumerate(self.roles):
            addr = f"198.51.100.{11 + i}"
            cl = box.add_ns(role, Client, role=role, underlay_addr=addr, underlay_dev="eth0")
            self._no_dad(cl)
            self.clients[role] = cl
            self._plug(cl, "eth0", "ul", f"c{i}")
            cl.ip("addr", "add", f"{addr}/24", "dev", "eth0")
            cl.ip("link", "set", "eth0", "up")
        self.inet.run(["nft", "-f", "-"], input=CAPTURE_NFT)
        self._start_http()
        for gw in self.gateways.values():
            wait_until(
                lambda gw=gw: not gw.ns.ip("-6", "addr", "show", "tentative").stdout.strip(),
                timeout=10.0,
                interval=0.1,
                what=f"IPv6 DAD in {gw.ns.name}",
            )

    def _quiet_ns(self, label: str) -> Namespace:
        assert self.box is not None
        ns: Namespace = self.box.add_ns(label)
        self._no_dad(ns)
        return ns

    @staticmethod
    def _no_dad(ns: Namespace) -> None:
        # Only gateways keep DAD (wggw's host, as in production); elsewhere it only delays.
        for scope in ("all", "default"):
            ns.sysctl(f"net.ipv6.conf.{scope}.accept_dad", 0)

    def _plug(self, ns: Namespace, dev: str, bridge: str, port: str) -> None:
        """A veth from `ns` (named `dev`) to a port of `bridge` in the switch namespace."""
        assert self.sw is not None
        ns.ip("link", "add", dev, "type", "veth", "peer", "name", f"{bridge}-{port}",
              "netns", self.sw.name)  # fmt: skip
        self.sw.ip("link", "set", "dev", f"{bridge}-{port}", "master", bridge, "up")

    @staticmethod
    def _addrs(ns: Namespace, dev: str, v4: str, v6: str | None) -> None:
        ns.ip("addr", "add", f"{v4}/24", "dev", dev)
        if v6:
            ns.ip("addr", "add", f"{v6}/64", "dev", dev, "nodad")
        ns.ip("link", "set", dev, "up")

    def _add_gateway(self, name: str, index: int) -> None:
        assert self.box is not None
        ns: Namespace = self.box.add_ns(name)
        gw = GatewayHost(name, index, ns, self.workdir / f"run-{name}", self.workdir / f"wg-{name}")
        for d in (gw.run_dir, gw.wg_dir):
            d.mkdir(mode=0o700)
        self.gateways[name] = gw
        self._plug(ns, UPLINK_DEV, "up", name)
        self._plug(ns, UNDERLAY_DEV, "ul", name)
        self._addrs(ns, UPLINK_DEV, gw.uplink_v4, gw.uplink_v6)
        self._addrs(ns, UNDERLAY_DEV, gw.underlay_ip, None)
        ns.ip("-4", "route", "add", "default", "via", INET_V4, "dev", UPLINK_DEV)
        ns.ip("-6", "route", "add", "default", "via", INET_V6, "dev", UPLINK_DEV)

    def _start_http(self) -> None:
        assert self.inet is not None
        proc = self.inet.spawn(
            [sys.executable, "-m", "wggw.lab.httpd"],
            marker="wggw.lab.httpd",
            log=self.http_log,
            env=self.py_env(),
            pipe_stdout=True,
        )
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        buf = bytearray()

        def ready() -> bool:
            if proc.poll() is not None:
                raise LabError(f"HTTP server in {self.inet}: exited {proc.returncode}")
            buf.extend(proc.stdout.read() or b"")  # type: ignore[union-attr]
            return b"ready" in buf

        wait_until(ready, timeout=10.0, what="the internet host's HTTP server")

    @property
    def http_log(self) -> Path:
        return self.workdir / "inet-http.log"

    # --- wggw --------------------------------------------------------------------------------
    def py_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH", "")
        return {
            **os.environ,
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT),
            **(extra or {}),
        }

    def env(self, where: str | None = None) -> dict[str, str]:
        """The environment of a wggw on a gateway (`where`) or of an operator (None)."""
        run_dir = self.gateways[where].run_dir if where else self.workdir / "run-ops"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        return self.py_env({
            "WGGW_DB": self.db_url,
            "WGGW_KEY_FILE": str(self.workdir / "wggw.key"),
            "WGGW_RUN_DIR": str(run_dir),
            "WGGW_STATE_DIR": str(self.workdir / "no-sqlite"),  # never used: WGGW_DB wins
        })  # fmt: skip

    def wggw_argv(self, where: str | None, *args: str) -> list[str]:
        """The wggw CLI on gateway `where`'s host, or in the operators' namespace (None)."""
        cli = [sys.executable, "-m", "wggw.cli.entry", *args]
        if where is None:
            assert self.ops is not None
            return ["ip", "netns", "exec", self.ops.name, *cli]
        return self.gateways[where].argv(*cli)

    def wggw(
        self,
        where: str | None,
        *args: str,
        check: bool = True,
        ok_codes: Iterable[int] = (0,),
        timeout: float = CMD_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        res = run(self.wggw_argv(where, *args), check=False, timeout=timeout, env=self.env(where))
        if check and res.returncode not in tuple(ok_codes):
            raise LabError(
                f"wggw {' '.join(args)} on {where or 'ops'}: exit {res.returncode}\n"
                f"stdout: {res.stdout.strip()}\nstderr: {res.stderr.strip()}"
            )
        return res

    def start_agent(self, gw: str, *args: str, ready: float = 30.0) -> subprocess.Popen:
        """`wggw agent --gateway GW` on that gateway's host; returns once it converged once."""
        if gw in self.agents:
            raise LabError(f"an agent already runs on {gw}")
        log_path = self.agent_log(gw)
        before = log_path.read_text(errors="replace") if log_path.exists() else ""
        argv = self.wggw_argv(gw, "agent", "--gateway", gw, *args)
        with open(log_path, "a") as log:
            proc = subprocess.Popen(argv, env=self.env(gw), stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        self.agents[gw] = proc

        def converged() -> bool:
            if proc.poll() is not None:
                raise LabError(f"agent on {gw} exited {proc.returncode}: {self.agent_text(gw)}")
            text = log_path.read_text(errors="replace")[len(before) :]
            return "converged trigger=start" in text

        wait_until(converged, timeout=ready, interval=0.1, what=f"the agent on {gw} to converge")
        return proc

    def agent_log(self, gw: str) -> Path:
        return self.workdir / f"agent-{gw}.log"

    def agent_text(self, gw: str) -> str:
        try:
            return self.agent_log(gw).read_text(errors="replace")
        except OSError:
            return "(no log)"

    def stop_agent(self, gw: str) -> int | None:
        """SIGTERM (SIGKILL after 10 s) the agent this lab started on `gw`; its exit code."""
        proc = self.agents.pop(gw, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    # --- the internet host -------------------------------------------------------------------
    def route_back(self, pools: Iterable[str], gw: str) -> None:
        """The internet host's return routes for `pools` via gateway `gw` (what the upstream
        router of a real fleet learns, here set by the test)."""
        assert self.inet is not None
        host = self.gateways[gw]
        for pool in pools:
            via = host.uplink_v6 if ":" in pool else host.uplink_v4
            self.inet.ip("route", "replace", pool, "via", via)

    def seen(self) -> Seen:
        """What the internet host saw since the last `forget`: requests and packets by source."""
        assert self.inet is not None
        with open(self.http_log, "rb") as f:
            f.seek(self._http_offset)
            text = f.read().decode(errors="replace")
        requests = [
            (m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))
            for m in map(_HTTP_LINE.match, text.splitlines())
            if m
        ]
        packets: dict[str, int] = {}
        for name in ("src4", "src6"):
            out = self.inet.run(["nft", "-j", "list", "set", "inet", CAPTURE_TABLE, name]).stdout
            for obj in json.loads(out)["nftables"]:
                for elem in obj.get("set", {}).get("elem", []):
                    e = elem["elem"]
                    packets[e["val"]] = packets.get(e["val"], 0) + e["counter"]["packets"]
        return Seen(requests, packets)

    def forget(self) -> None:
        """Start a new capture window."""
        assert self.inet is not None
        for name in ("src4", "src6"):
            self.inet.run(["nft", "flush", "set", "inet", CAPTURE_TABLE, name])
        self._http_offset = self.http_log.stat().st_size


@dataclass
class Seen:
    """What the internet host saw in one window."""

    requests: list[tuple[str, str, int, int]]  # (source, tenant, family, seq)
    packets: dict[str, int]  # source -> packets (every packet, answered or not)

    def wrong_requests(self, egress: Mapping[tuple[str, int], str]) -> list:
        """Requests of a tenant that arrived with any source but its own egress."""
        return [r for r in self.requests if egress.get((r[1], r[2])) != r[0]]

    def wrong_packets(self, egress: Mapping[tuple[str, int], str]) -> dict[str, int]:
        """Packets from a source that is no tenant's egress (a pool, an uplink address...)."""
        allowed = set(egress.values())
        return {src: n for src, n in self.packets.items() if src not in allowed}
