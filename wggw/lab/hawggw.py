"""wggw in the HA lab: one throwaway PostgreSQL as the shared store, an operator writing it,
and on each gateway `wggw agent --gateway NAME` plus the keepalived that runs on the
configuration that agent renders (the product's, never the lab's).

The operator's commands run on the harness host (they only touch the store: the interface is
placed on gwa then gwb, nothing of it runs here). Each agent runs in its gateway namespace with
that gateway's private runtime dir, wireguard socket dir and state dir (`GatewayHost`), so two
agents with the same interface on one machine behave as on two hosts.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wggw.lab.ha import ENDPOINT_VIP, GATEWAYS, UPLINK_DEV, HaLab
from wggw.lab.netns import LabError, run, wait_until
from wggw.lab.pgcluster import Cluster

HOOK = Path(__file__).resolve().parent.parent / "agent" / "hahook.py"  # keepalived's check
LISTEN_PORT = 51820
# The agent reports peers' endpoints from the device reads its rounds do; at the default resync
# (60 s) a client that connected within the last minute has no reported endpoint yet, and the
# takeover kick cannot reach it. The lab resyncs every 2 s so every client is known before the
# first cycle (the benchmark states it).
AGENT_RESYNC = "2"
# Each client role is a tenant with its pools and egress IPs (documentation ranges only).
TENANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "acme": {"pools": ("10.10.0.0/24", "fd00:a::/64"),
             "egress": ("203.0.113.10", "2001:db8:ffff::10")},
    "globex": {"pools": ("10.20.0.0/24", "fd00:b::/64"),
               "egress": ("203.0.113.20", "2001:db8:ffff::20")},
}  # fmt: skip


@dataclass
class Fleet:
    """The store and the agents of one HA lab run (see the module docstring)."""

    lab: HaLab
    cluster: Cluster
    url: str
    ifname: str

    @property
    def env(self) -> dict[str, str]:
        return {"WGGW_DB": self.url, "WGGW_KEY_FILE": str(self.lab.workdir / "wggw.key")}

    def wggw(self, *args: str, timeout: float = 60.0) -> str:
        """The operator's wggw (on the harness host, store only); its stdout."""
        argv = [sys.executable, "-m", "wggw.cli.entry", "--state-dir",
                str(self.lab.workdir / "operator"), *args]  # fmt: skip
        res = run(argv, check=False, timeout=timeout, env={**_os_env(), **self.lab.env(self.env)})
        if res.returncode != 0:
            raise LabError(f"wggw {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
        return res.stdout

    def configure(self, tenants: Sequence[str]) -> None:
        """Gateways gwa, gwb; the HA interface on both (gwa first); each tenant with one peer."""
        self.wggw("init")
        for gw in GATEWAYS:
            self.wggw("gateway", "add", gw, "--uplink", UPLINK_DEV)
        self.wggw("interface", "add", self.ifname, "--listen-port", str(LISTEN_PORT),
                  "--endpoint", f"{ENDPOINT_VIP}:{LISTEN_PORT}",
                  *(a for gw in GATEWAYS for a in ("--gateway", gw)))  # fmt: skip
        for name in tenants:
            t = TENANTS[name]
            opts = [f"--pool={p}" for p in t["pools"]] + [f"--egress={e}" for e in t["egress"]]
            self.wggw("tenant", "add", name, *opts, "--interface", self.ifname)
            self.wggw("peer", "add", f"{name}/laptop")

    def start_gateway(self, label: str, ha_env: Mapping[str, str], kick: bool = True) -> None:
        """The agent of gateway `label`, then keepalived on the configuration it wrote.
        `kick=False` is the stock behaviour for the baseline: keepalived on a copy of that
        configuration without its notify script, so the addresses move and nobody starts a
        handshake (clients wait for their own retry)."""
        gw = self.lab.gw(label)
        argv = [sys.executable, "-m", "wggw.cli.entry", "--state-dir", str(gw.home / "state"),
                "agent", "--gateway", label, "--resync", AGENT_RESYNC]  # fmt: skip
        self.lab.start_service(label, "agent", argv, {**self.env, **ha_env})
        conf = gw.run_dir / "keepalived.conf"
        wait_until(conf.exists, timeout=60.0, interval=0.1, what=f"{label}'s keepalived.conf")
        if not kick:
            text = conf.read_text()
            stock = "".join(
                ln for ln in text.splitlines(True) if not ln.strip().startswith("notify")
            )
            if stock == text:
                raise LabError(f"{label}'s keepalived.conf has no notify line to leave out")
            conf = gw.home / "keepalived-stock.conf"
            conf.write_text(stock)
        self.lab.start_keepalived(label, conf, pidfile=gw.run_dir / "keepalived.pid")

    def connect(self, tenants: Sequence[str]) -> None:
        for name in tenants:
            conf = self.wggw("peer", "config", f"{name}/laptop")
            if "persistentkeepalive" in conf.lower():
                raise LabError(f"{name}'s client config has a keepalive: {conf!r}")
            self.lab.client(name).up_wireguard(conf)

    def healthy(self, label: str) -> bool:
        """Gateway `label` is fit to stand by: its agent answers keepalived's own track check
        (converged, uplink usable) and every VRRP instance is BACKUP or MASTER, not FAULT."""
        from wggw.lab.hacycle import vrrp_states

        gw = self.lab.gw(label)
        states = set(vrrp_states(self.lab, label).values())
        if not states or not states <= {"BACKUP", "MASTER"}:
            return False
        check = [sys.executable, "-I", str(HOOK), "check", str(gw.run_dir / "agent.sock")]
        return gw.run(check, check=False, timeout=10.0).returncode == 0

    def reported_endpoints(self) -> int:
        """How many peers have an endpoint in the store's peer reports (what the kick uses)."""
        dbname = self.url.split("///", 1)[1].split("?", 1)[0]
        sql = "SELECT count(DISTINCT public_key) FROM peer_reports WHERE endpoint IS NOT NULL"
        return int(self.cluster.psql(dbname, sql).strip() or 0)


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def start(
    lab: HaLab,
    cluster: Cluster,
    tenants: Sequence[str],
    ha_env: Mapping[str, str],
    kick: bool = True,
) -> Fleet:
    """Configure the store, start both gateways (gwa first, so it becomes the active one) and
    connect every client."""
    assert lab.box is not None
    fleet = Fleet(lab, cluster, cluster.createdb(), f"wh{lab.box.suffix}0")
    for gw in GATEWAYS:
        lab.box.own_ifname(fleet.ifname)
        lab.gw(gw).home.joinpath("state").mkdir(mode=0o700, exist_ok=True)
    fleet.configure(tenants)
    for gw in GATEWAYS:
        fleet.start_gateway(gw, ha_env, kick)
    fleet.connect(tenants)
    return fleet


def keepalived_conf(lab: HaLab, label: str) -> Path:
    return lab.gw(label).run_dir / "keepalived.conf"
