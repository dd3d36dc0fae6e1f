"""Test helper: configure a two-tenant wggw gateway in a lab and connect one client per
tenant, plus snapshots of a namespace's whole network state for no-trace checks."""

from __future__ import annotations

import json
from dataclasses import dataclass

from wggw.lab.topology import INET_URL_V4, INET_URL_V6, Lab, new_ifname

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
URLS = {4: INET_URL_V4, 6: INET_URL_V6}


@dataclass
class Gateway:
    lab: Lab
    ifname: str

    def configure(self) -> Gateway:
        lab = self.lab
        lab.own_ifname(self.ifname)  # teardown removes the socket if a test dies before `down`
        lab.wggw("init")
        lab.wggw(
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
            lab.wggw("tenant", "add", name, *args, "--uplink", lab.uplink_dev)
            lab.wggw("peer", "add", f"{name}/laptop")
        return self

    def connect(self, tenant: str, peer: str = "laptop") -> None:
        conf = self.lab.wggw("peer", "config", f"{tenant}/{peer}").stdout
        self.lab.client(tenant).up_wireguard(conf)

    def seen(self, tenant: str, v: int, retry: bool = True) -> str:
        client = self.lab.client(tenant)
        if retry:
            return client.fetch_retry(URLS[v], attempts=8, delay=0.5, timeout=2.0)
        return client.fetch(URLS[v], timeout=2.0)

    def status(self) -> dict:
        return json.loads(self.lab.wggw("status", "--json").stdout)

    def handshake_of(self, ref: str) -> str | None:
        tenant, name = ref.split("/")
        peer = next(
            p for p in self.status()["peers"] if p["tenant"] == tenant and p["name"] == name
        )
        return peer["latest_handshake"]


def up(lab: Lab) -> Gateway:
    """A configured and applied gateway with both tenants' clients connected."""
    gw = Gateway(lab, new_ifname("wgw")).configure()
    lab.wggw("apply")
    for tenant in TENANTS:
        gw.connect(tenant)
    return gw


def snapshot(ns) -> dict[str, str]:
    """Everything wggw could change in a namespace, as text (link-local noise removed)."""
    cmds = {
        "links": ["ip", "-o", "link", "show"],
        "addr4": ["ip", "-o", "-4", "addr", "show"],
        "addr6": ["ip", "-o", "-6", "addr", "show", "scope", "global"],
        "rules4": ["ip", "-4", "rule", "show"],
        "rules6": ["ip", "-6", "rule", "show"],
        "routes4": ["ip", "-4", "route", "show", "table", "all"],
        "routes6": ["ip", "-6", "route", "show", "table", "all"],
        "nft": ["nft", "list", "ruleset"],
        "tc": ["tc", "qdisc", "show"],  # wggw's clsact qdiscs go with its filters
    }
    out = {}
    for key, argv in cmds.items():
        text = ns.run(argv).stdout
        lines = [ln for ln in text.splitlines() if "fe80::" not in ln and "ff00::/8" not in ln]
        out[key] = "\n".join(lines)
    out["wireguard-go"] = "\n".join(sorted(str(p) for p in ns.pids() if "wireguard-go" in _cmd(p)))
    return out


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""
