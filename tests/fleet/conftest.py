"""The fleet tier (root, PostgreSQL): one FleetLab for the module, three gateways each running
`wggw agent --gateway gwN` against one throwaway PostgreSQL, a tenant placed on each gateway with
a connected client. Everything (namespaces, agents, wireguard-go, the cluster, runtime files) is
removed also when a test fails."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from wggwtest import require_netns, require_pg

from wggw.lab.fleet import INET_V4, INET_V6, UPLINK_DEV, FleetLab
from wggw.lab.netns import LabError

GATEWAYS = ("gw1", "gw2", "gw3")
# tenant -> (gateway, pools, egress); the client namespace is named after the tenant.
TENANTS = {
    f"t{n}": (f"gw{n}", (f"10.{n}.0.0/24", f"fd00:{n}::/64"),
              (f"203.0.113.{10 + n}", f"2001:db8:ffff::{10 + n}"))
    for n in (1, 2, 3)
}  # fmt: skip
# A command may take this many times longer on a slow machine.
SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))


def egress_map() -> dict[tuple[str, int], str]:
    return {(t, v): e[0 if v == 4 else 1] for t, (_, _, e) in TENANTS.items() for v in (4, 6)}


@dataclass
class Fleet:
    lab: FleetLab
    ifnames: dict[str, str] = field(default_factory=dict)  # gateway -> its interface
    ports: dict[str, int] = field(default_factory=dict)  # gateway -> its listen port
    gw_keys: dict[str, str] = field(default_factory=dict)  # interface -> its public key

    def op(self, *args: str, **kw):
        """A wggw command as an operator (the operators' namespace)."""
        return self.lab.wggw(None, *args, **kw)

    def json(self, *args: str):
        return json.loads(self.op(*args, "--json").stdout)

    def peers_of(self, tenant: str) -> dict[str, str]:
        """name -> public key of the tenant's peers, as the store has them."""
        return {p["name"]: p["public_key"] for p in self.json("peer", "list", "--tenant", tenant)}

    def placed(self, gw: str) -> set[str]:
        """Public keys of the peers the store places on gateway `gw`."""
        return {k for t, (g, _, _) in TENANTS.items() if g == gw for k in self.peers_of(t).values()}


def _place_gateways(f: Fleet) -> None:
    for gw in GATEWAYS:
        f.op("gateway", "add", gw, "--uplink", UPLINK_DEV, "--via", INET_V4, "--via", INET_V6)


def _configure(f: Fleet) -> None:
    lab = f.lab
    f.op("init")
    _place_gateways(f)
    for i, gw in enumerate(GATEWAYS, start=1):
        host = lab.gateways[gw]
        assert lab.box is not None
        ifname, port = lab.box.ifname(), 51820 + i
        f.ifnames[gw], f.ports[gw] = ifname, port
        f.op("interface", "add", ifname, "--listen-port", str(port),
             "--endpoint", f"{host.underlay_ip}:{port}", "--gateway", gw)  # fmt: skip
        f.gw_keys[ifname] = f.json("interface", "show", ifname)["public_key"]
    for tenant, (gw, pools, egress) in TENANTS.items():
        args = [f"--pool={p}" for p in pools] + [f"--egress={e}" for e in egress]
        f.op("tenant", "add", tenant, *args, "--interface", f.ifnames[gw])
        f.op("peer", "add", f"{tenant}/laptop")
        lab.route_back(pools, gw)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    require_netns("the fleet tier", ("ip", "wg", "wireguard-go", "nft"))
    require_pg("the fleet tier")
    lab = FleetLab(GATEWAYS, clients=tuple(TENANTS))
    with lab:
        f = Fleet(lab)
        try:
            _configure(f)
            for gw in GATEWAYS:
                lab.start_agent(gw, ready=30 * SCALE)
            for tenant in TENANTS:
                conf = f.op("peer", "config", f"{tenant}/laptop").stdout
                lab.clients[tenant].up_wireguard(conf)
            yield f
        finally:
            problems = lab.close()
            left = lab.box.leftovers() if lab.box else []
            if problems or left:
                raise LabError(f"fleet lab teardown: {problems} left: {left}")


def pytest_terminal_summary(terminalreporter) -> None:
    """The figures the fleet tests measured (the tenant move's gap), after the results."""
    from test_fleet import FIGURES

    for name, text in FIGURES.items():
        terminalreporter.write_line(f"fleet: {name}: {text}")
