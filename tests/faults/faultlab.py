"""The fault suite's lab: wggw's namespace Lab with a gateway running wggw for two tenants, an
internet host that routes the tenant pools back to the gateway and records every source it sees,
and steady client traffic from both tenants over v4 and v6.

Why the return routes: without them a packet that leaves the gateway un-NATed (from a pool
address) gets no answer and shows up only as a timeout, indistinguishable from a packet that was
dropped. With them, a leak completes and is recorded twice at the internet host: its HTTP server
logs the peer address and path of every request (`/<tenant>/<family>/<seq>`, so each request is
attributed to the tenant that sent it), and an nft table there counts every packet to the lab's
services per source address (dynamic sets with per-element counters), whether or not a
connection ever completed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wggw.backends import runfiles
from wggw.lab.netns import wait_until  # noqa: F401 (re-exported for the fault tests)
from wggw.lab.topology import (
    GW_UPLINK_V4,
    GW_UPLINK_V6,
    INET_V4,
    INET_V6,
    NETNS_DIR,
    Lab,
    LabError,
    new_ifname,
)

TENANTS = {
    "acme": {
        "pools": ("10.10.0.0/24", "fd00:a::/64"),
        "egress": ("203.0.113.10", "2001:db8:ffff::10"),
    },
    "globex": {
        "pools": ("10.20.0.0/24", "fd00:b::/64"),
        "egress": ("203.0.113.20", "2001:db8:ffff::20"),
    },
}
# A command may take this many times longer on a slow machine (the VM tier sets 8: TCG).
CMD_TIMEOUT = 60 * float(os.environ.get("WGGW_TIME_SCALE", "1"))

STREAMS = [(t, v) for t in TENANTS for v in (4, 6)]
EGRESS = {(t, v): TENANTS[t]["egress"][0 if v == 4 else 1] for t in TENANTS for v in (4, 6)}
ALL_EGRESS = frozenset(EGRESS.values())
TRAFFIC_SCRIPT = Path(__file__).with_name("traffic.py")

# Every packet to the lab's services (HTTP 80, UDP echo 7) or an echo request, counted per source.
CAPTURE_TABLE = "faultcap"
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
_HTTP_LINE = re.compile(r'^(\S+) "GET /([a-z]+)/([46])/(\d+) HTTP')


@dataclass
class Seen:
    """What the internet host saw in one window: HTTP requests and packets per source."""

    requests: list[tuple[str, str, int, int]]  # (source, tenant, family, seq)
    packets: dict[str, int]  # source -> packets

    def leaked_requests(self) -> list[tuple[str, str, int, int]]:
        """Requests that arrived with any source but their own tenant's egress."""
        return [r for r in self.requests if EGRESS.get((r[1], r[2])) != r[0]]

    def leaked_packets(self) -> dict[str, int]:
        """Packets from a source that is no tenant's egress (pool addresses, the uplink, ...)."""
        return {src: n for src, n in self.packets.items() if src not in ALL_EGRESS}


class Capture:
    """The internet host's records: its HTTP log (from an offset) and the nft per-source sets."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.log = lab.workdir / "inet-http.log"
        self.offset = 0

    def install(self) -> None:
        self.lab.inet.run(["nft", "-f", "-"], input=CAPTURE_NFT)

    def reset(self) -> None:
        """Start a new window: forget packets counted so far and skip the log written so far."""
        for name in ("src4", "src6"):
            self.lab.inet.run(["nft", "flush", "set", "inet", CAPTURE_TABLE, name])
        self.offset = self.log.stat().st_size

    def read(self) -> Seen:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        requests = []
        for line in text.splitlines():
            m = _HTTP_LINE.match(line)
            if m:
                requests.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4))))
        packets: dict[str, int] = {}
        for name in ("src4", "src6"):
            argv = ["nft", "-j", "list", "set", "inet", CAPTURE_TABLE, name]
            out = self.lab.inet.run(argv).stdout
            for obj in json.loads(out)["nftables"]:
                for elem in obj.get("set", {}).get("elem", []):
                    e = elem["elem"]
                    packets[e["val"]] = packets.get(e["val"], 0) + e["counter"]["packets"]
        return Seen(requests, packets)


@dataclass
class Traffic:
    """One traffic generator per tenant client, both families; see traffic.py."""

    lab: Lab
    logs: dict[str, Path] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)

    def start(self, interval: float = 0.1, timeout: float = 0.5) -> Traffic:
        tag = secrets.token_hex(3)
        for tenant in TENANTS:
            client = self.lab.client(tenant)
            log = self.lab.workdir / f"traffic-{tenant}-{tag}.jsonl"
            log.touch()
            proc = client.spawn(
                [
                    sys.executable,
                    str(TRAFFIC_SCRIPT),
                    tenant,
                    str(log),
                    INET_V4,
                    INET_V6,
                    str(interval),
                    str(timeout),
                    "600",
                ],
                marker=str(TRAFFIC_SCRIPT),
                log=self.lab.workdir / "traffic.err",
            )
            self.logs[tenant] = log
            self.pids.append(proc.pid)
        return self

    def stop(self) -> None:
        pids, self.pids = self.pids, []
        for pid in pids:
            self.lab.procs.stop(pid, timeout=3.0)

    def records(self) -> Iterator[tuple[str, dict]]:
        for tenant, log in self.logs.items():
            for line in log.read_text().splitlines():
                try:
                    yield tenant, json.loads(line)
                except ValueError:  # a line cut short by the stop
                    continue

    def correct_since(self, t: float) -> dict[tuple[str, int], float]:
        """Per stream, when the first request started at or after `t` came back with the
        stream's own egress (monotonic time of its answer)."""
        first: dict[tuple[str, int], float] = {}
        for tenant, r in self.records():
            key = (tenant, r["v"])
            if r["t0"] >= t and r["src"] == EGRESS[key] and key not in first:
                first[key] = r["t1"]
        return first

    def wait_all_correct(self, since: float, timeout: float) -> dict[tuple[str, int], float]:
        """Bounded wait until every stream had a correct answer to a request started after
        `since`; returns what was seen (possibly incomplete after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.correct_since(since)
            if len(seen) == len(STREAMS) or time.monotonic() >= deadline:
                return seen
            time.sleep(0.1)

    def tried(self, since: float = 0.0) -> int:
        return sum(1 for _, r in self.records() if r["t0"] >= since)


class FaultLab:
    """A Lab with wggw configured and applied for both tenants, clients connected, the internet
    host routing the pools back and capturing. `heal()` puts it back after a test."""

    def __init__(self) -> None:
        self.lab = Lab(("acme", "globex"))
        self.ifname = ""
        self.capture: Capture | None = None
        self.tables: dict[str, int] = {}  # tenant -> its routing table id
        self.confs: dict[str, str] = {}  # tenant -> its client's wg-quick config

    def start(self) -> FaultLab:
        lab = self.lab.start()
        try:
            self.restore_infra()
            self.capture = Capture(lab)
            self.capture.install()
            self.ifname = new_ifname("wgf")
            lab.own_ifname(self.ifname)
            self._configure()
            for tenant in TENANTS:
                shown = json.loads(self.wggw("tenant", "show", tenant, "--json").stdout)
                self.tables[tenant] = int(shown["table"])
            self.wggw("apply")
            for tenant in TENANTS:
                self.confs[tenant] = self.wggw("peer", "config", f"{tenant}/laptop").stdout
                lab.client(tenant).up_wireguard(self.confs[tenant])
            self._first_look()
        except BaseException:
            self.close()
            raise
        return self

    def _first_look(self) -> None:
        """Traffic once from every stream, then `wggw status`: as on a monitored gateway, wggw
        has looked at the peers since the clients connected (it remembers their endpoints from
        what it sees). The `wireguard_killed_after_roam` fault is the case where it has not."""
        traffic = Traffic(self.lab).start()
        try:
            seen = traffic.wait_all_correct(0.0, 20.0)
        finally:
            traffic.stop()
        if len(seen) != len(STREAMS):
            raise LabError(f"fault lab: streams answered correctly after start: {sorted(seen)}")
        self.wggw("status")

    def _configure(self) -> None:
        lab = self.lab
        self.wggw("init")
        self.wggw(
            "interface",
            "add",
            self.ifname,
            "--listen-port",
            "51820",
            "--endpoint",
            f"{lab.gw_underlay_ip}:51820",
        )
        for name, t in TENANTS.items():
            args = [f"--pool={p}" for p in t["pools"]] + [f"--egress={e}" for e in t["egress"]]
            self.wggw("tenant", "add", name, *args, "--uplink", lab.uplink_dev)
            self.wggw("peer", "add", f"{name}/laptop")

    def close(self) -> None:
        """`wggw down` (best effort), then the lab's own teardown."""
        if self.lab.gw is not None and (NETNS_DIR / self.lab.gw.name).exists():
            self.wggw("down", check=False, timeout=CMD_TIMEOUT)
        self.lab.close()

    # --- helpers ---------------------------------------------------------------------------
    def wggw(self, *args: str, check: bool = True, ok_codes=(0,), timeout: float = 120.0):
        return self.lab.wggw(*args, check=check, ok_codes=ok_codes, timeout=timeout)

    def wggw_popen(self, *args: str) -> subprocess.Popen:
        """Start a wggw command in the gateway namespace without waiting for it."""
        argv = [
            "ip",
            "netns",
            "exec",
            self.lab.gw.name,
            sys.executable,
            "-m",
            "wggw.cli.app",
            "--state-dir",
            str(self.lab.state_dir),
            *args,
        ]
        return subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.lab._py_env(),
            start_new_session=True,
        )

    def plan_rc(self) -> tuple[int, str]:
        res = self.wggw("plan", "--detailed-exitcode", check=False, timeout=CMD_TIMEOUT)
        return res.returncode, res.stdout + res.stderr

    def wireguard_go_pid(self) -> int | None:
        """The PID of the gateway's wireguard-go (None with kernel WireGuard)."""
        try:
            return int(runfiles.pid_file(self.ifname).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def restore_infra(self) -> None:
        """What the host's own network configuration would restore after the uplink came back:
        the lab's uplink addresses and default routes (IPv6 drops addresses on link down), and
        the internet host's return routes to the pools. Never anything of wggw's."""
        gw, inet = self.lab.gw, self.lab.inet
        gw.ip("link", "set", self.lab.uplink_dev, "up")
        have = gw.ip("-6", "addr", "show", "dev", self.lab.uplink_dev).stdout
        if f"{GW_UPLINK_V6}/64" not in have:
            gw.ip("addr", "add", f"{GW_UPLINK_V6}/64", "dev", self.lab.uplink_dev, "nodad")
        gw.ip("-4", "route", "replace", "default", "via", INET_V4, "dev", self.lab.uplink_dev)
        gw.ip("-6", "route", "replace", "default", "via", INET_V6, "dev", self.lab.uplink_dev)
        for t in TENANTS.values():
            inet.ip("-4", "route", "replace", t["pools"][0], "via", GW_UPLINK_V4)
            inet.ip("-6", "route", "replace", t["pools"][1], "via", GW_UPLINK_V6)

    def heal(self) -> None:
        """Back to the converged state after a trial that failed, whatever it left (bounded):
        the host's infrastructure, no foreign rule, and wggw's nft table loaded afresh (an
        in-place edit may be invisible to wggw's observation: that is a defect the suite
        reports, not something the next trial should inherit). Raises LabError if traffic
        does not flow correctly afterwards."""
        self.restore_infra()
        for fam in ("-4", "-6"):
            self.lab.gw.ip(fam, "rule", "del", "pref", "100", "lookup", "main", check=False)
        self.lab.gw.run(["nft", "delete", "table", "inet", "wggw"], check=False)
        self.wggw("apply", timeout=2 * CMD_TIMEOUT)
        rc, out = self.plan_rc()
        if rc != 0:
            raise LabError(f"fault lab did not heal: plan exit {rc}: {out}")
        traffic = Traffic(self.lab).start()
        try:
            seen = traffic.wait_all_correct(0.0, 25.0)
        finally:
            traffic.stop()
        if len(seen) != len(STREAMS):
            raise LabError(f"fault lab did not heal: streams answered correctly: {sorted(seen)}")
