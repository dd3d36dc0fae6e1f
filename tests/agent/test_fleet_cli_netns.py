"""The fleet CLI against a real agent: `wggw agent --gateway gw1` in a lab gateway namespace
(real wireguard-go, nft, packets) on a throwaway PostgreSQL, driven only by the CLI.

The interface starts on gw2, which has no agent here: gw1's host runs nothing. `tenant move
acme --to gw1` then waits for gw1's agent to build acme and report it, and only then pins it:
acme's client leaves by acme's egress through gw1, globex (still gw2's) is not on this host.
`peer add --apply` returns once gw1's agent has reported the change applied (the key is on
the device when the command returns), `gateway list` and `status --fleet` show gw1's reports,
and a change for a gateway without an agent times out with one line naming it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import AgentProc, forget_agent_files
from wggwtest import pg_cluster

from wggw.lab.topology import INET_URL_V4, Lab, new_ifname

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
POOLS = {"acme": "10.10.0.0/24", "globex": "10.20.0.0/24"}
EGRESS = {"acme": "203.0.113.10", "globex": "203.0.113.20"}


@dataclass
class Fleet:
    lab: Lab
    env: dict[str, str]
    ifname: str
    agent: AgentProc

    def wggw(self, *args: str, code: int = 0):
        res = self.lab.wggw(*args, env=self.env, check=False, timeout=120 * SCALE)
        assert res.returncode == code, (args, res.returncode, res.stdout, res.stderr)
        return res

    def device_keys(self) -> set[str]:
        return set(self.lab.gw.run(["wg", "show", self.ifname, "peers"]).stdout.split())

    def addresses(self) -> str:
        return self.lab.gw.run(["ip", "-4", "-o", "addr", "show"]).stdout


@pytest.fixture(scope="module")
def fleet(require_root: None) -> Iterator[Fleet]:
    with pg_cluster("the PostgreSQL tests") as cluster:
        url = cluster.createdb()
        with Lab(("acme", "globex")) as lab:
            env = {"WGGW_DB": url, "WGGW_KEY_FILE": str(lab.workdir / "wggw.key")}
            ifname = new_ifname("wgm")
            lab.own_ifname(ifname)
            agents: list[AgentProc] = []
            try:
                fleet = Fleet(lab, env, ifname, None)  # type: ignore[arg-type]
                _setup(fleet)
                agents.append(AgentProc(lab, "--gateway", "gw1", "--resync", "600", env=env))
                fleet.agent = agents[0]
                yield fleet
            finally:
                for agent in agents:
                    agent.stop(signal.SIGKILL)
                    print(agent.log()[-4000:])  # shown by pytest when a test failed
                forget_agent_files()
                lab.wggw("down", env=env, check=False)


def _setup(fleet: Fleet) -> None:
    """Everything through the CLI, on the operator's side (no --gateway)."""
    w, lab = fleet.wggw, fleet.lab
    w("init")
    w("gateway", "add", "gw1", "--uplink", lab.uplink_dev)
    w("gateway", "add", "gw2", "--uplink", lab.uplink_dev)
    w("interface", "add", fleet.ifname, "--listen-port", "51820",
      "--endpoint", f"{lab.gw_underlay_ip}:51820", "--gateway", "gw2")  # fmt: skip
    for t in ("acme", "globex"):
        # an egress that is on no host: `tenant add` checks no host but the one it runs on
        w("tenant", "add", t, f"--pool={POOLS[t]}", f"--egress={EGRESS[t]}")
        w("peer", "add", f"{t}/laptop")


def test_move_onto_the_agents_gateway_then_traffic_leaves_there(fleet: Fleet) -> None:
    assert EGRESS["acme"] not in fleet.addresses()  # all of it is gw2's: nothing here
    t0 = time.monotonic()
    res = fleet.wggw("tenant", "move", "acme", "--to", "gw1", "--timeout", str(60 * SCALE))
    took = time.monotonic() - t0
    assert "moved tenant acme to gw1" in res.stderr + res.stdout
    print(f"\ntenant move onto a live agent: {took:.2f} s")
    acme = json.loads(fleet.wggw("tenant", "show", "acme", "--json").stdout)
    assert (acme["gateway"], acme["moving_to"]) == ("gw1", None)
    # gw1 had built it when the move returned: the egress is on its uplink already
    addrs = fleet.addresses()
    assert EGRESS["acme"] in addrs and EGRESS["globex"] not in addrs
    conf = fleet.wggw("peer", "config", "acme/laptop").stdout
    fleet.lab.client("acme").up_wireguard(conf)
    seen = fleet.lab.client("acme").fetch_retry(INET_URL_V4, attempts=10, delay=0.5)
    assert seen == EGRESS["acme"]


def test_peer_apply_returns_once_the_gateway_applied_it(fleet: Fleet) -> None:
    t0 = time.monotonic()
    res = fleet.wggw("peer", "add", "acme/phone", "--apply", "--json")
    took = time.monotonic() - t0
    print(f"\npeer add --apply on a fleet: {took:.3f} s in all; {res.stderr.strip()}")
    phone = json.loads(res.stdout)
    assert "applied on gw1" in res.stderr
    assert phone["public_key"] in fleet.device_keys()  # no wait here: it is there already
    res = fleet.wggw("peer", "remove", "acme/phone", "--apply")
    assert "applied on gw1" in res.stdout
    assert phone["public_key"] not in fleet.device_keys()


def test_reports_reach_gateway_list_and_status_fleet(fleet: Fleet) -> None:
    fleet.lab.client("acme").fetch_retry(INET_URL_V4, attempts=10, delay=0.5)
    deadline = time.monotonic() + 30 * SCALE  # a device read (10 s) and the next heartbeat
    while True:
        out = json.loads(fleet.wggw("status", "--fleet", "--json").stdout)
        laptop = next(p for p in out["peers"] if p["tenant"] == "acme" and p["name"] == "laptop")
        if laptop["latest_handshake"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert laptop["gateway"] == "gw1" and laptop["endpoint"] and laptop["active"]
    gws = {g["name"]: g for g in json.loads(fleet.wggw("gateway", "list", "--json").stdout)}
    assert gws["gw1"]["health"] == "healthy" and gws["gw1"]["tenants"] == ["acme"]
    assert gws["gw1"]["pid"] == fleet.agent.proc.pid
    assert gws["gw2"]["health"] == "missing" and gws["gw2"]["tenants"] == ["globex"]
    assert out["converged"] is False  # gw2 runs globex and has never reported


def test_a_gateway_without_an_agent_times_out_with_one_line(fleet: Fleet) -> None:
    env = {**fleet.env, "WGGW_FLEET_TIMEOUT": "1"}
    res = fleet.lab.wggw("peer", "add", "globex/tablet", "--apply", env=env, check=False)
    assert res.returncode == 1, res
    line = res.stderr.strip()
    assert "\n" not in line and "gw2 (no report" in line and "gw1" not in line
    res = fleet.wggw("tenant", "move", "globex", "--to", "gw2", code=0)  # there alone already
    assert "runs on gw2 already" in res.stdout
