"""`wggw agent --gateway gw1` on a real PostgreSQL (a throwaway cluster started here), in a
real lab gateway namespace with real wireguard-go, nft and packets.

The store holds two gateways: the interface runs on gw1, tenant acme with it; tenant globex is
pinned to gw2, so the agent must apply acme only. Checked: only gw1's part is on the host; a
commit made elsewhere wakes the agent through LISTEN/NOTIFY (the notification counted, the
change on the device well before the 0.5 s poll would find it); the agent's reports are in
the store (generation, health, the peer's endpoint and handshake); PostgreSQL stopped: the
data plane keeps forwarding, the metrics show the store down, and when it is back the agent
reconnects, resyncs and applies what was committed meanwhile; `health` over the control
socket follows the uplink.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import AgentProc, forget_agent_files
from wggwtest import pg_cluster

from wggw.core.model import Gateway
from wggw.lab.pgcluster import Cluster
from wggw.lab.topology import INET_URL_V4, INET_V4, INET_V6, Lab, new_ifname
from wggw.ops import agentclient

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
PORT = 9587
POOLS = {"acme": "10.10.0.0/24", "globex": "10.20.0.0/24"}
EGRESS = {"acme": "203.0.113.10", "globex": "203.0.113.20"}


@dataclass
class Fleet:
    lab: Lab
    cluster: Cluster
    url: str
    env: dict[str, str]
    ifname: str
    agent: AgentProc

    def wggw(self, *args: str, check: bool = True):
        return self.lab.wggw(*args, env=self.env, check=check)

    def metric(self, name: str) -> float:
        text = self.lab.gw.run(["curl", "-sf", f"http://127.0.0.1:{PORT}/metrics"]).stdout
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert m, f"{name} not in the metrics"
        return float(m.group(1))

    def device_keys(self) -> set[str]:
        out = self.lab.gw.run(["wg", "show", self.ifname, "peers"]).stdout
        return set(out.split())

    @contextlib.contextmanager
    def store(self) -> Iterator:
        from wggw.store.postgres import PgStore
        from wggw.store.sealed import load_key_file

        cipher = load_key_file(Path(self.env["WGGW_KEY_FILE"]))
        s = PgStore(self.url, self.lab.state_dir, cipher=cipher)
        try:
            yield s
        finally:
            s.close()


def _place(fleet: Fleet) -> None:
    """Setup through the store API (the `gateway` noun is another branch's): two gateways,
    the interface on gw1, globex pinned to gw2."""
    with fleet.store() as s, s.transaction() as tx:
        tx.add_gateway(Gateway("gw1", uplink=fleet.lab.uplink_dev, created_at=time.time()))
        tx.add_gateway(Gateway("gw2", created_at=time.time()))
        iface = tx.interface(fleet.ifname)
        tx.update_interface(replace(iface, gateways=("gw1",)))
        tx.update_tenant(replace(tx.tenant("globex"), gateway="gw2"))


@pytest.fixture(scope="module")
def fleet(require_root: None) -> Iterator[Fleet]:
    with pg_cluster("the PostgreSQL tests") as cluster:
        url = cluster.createdb()
        with Lab(("acme", "globex")) as lab:
            env = {"WGGW_DB": url, "WGGW_KEY_FILE": str(lab.workdir / "wggw.key")}
            ifname = new_ifname("wgf")
            lab.own_ifname(ifname)
            agents: list[AgentProc] = []
            try:
                lab.wggw("init", env=env)
                lab.wggw("interface", "add", ifname, "--listen-port", "51820",
                         "--endpoint", f"{lab.gw_underlay_ip}:51820", env=env)  # fmt: skip
                for t in ("acme", "globex"):
                    lab.wggw("tenant", "add", t, f"--pool={POOLS[t]}", f"--egress={EGRESS[t]}",
                             "--uplink", lab.uplink_dev, env=env)  # fmt: skip
                    lab.wggw("peer", "add", f"{t}/laptop", env=env)
                fleet = Fleet(lab, cluster, url, env, ifname, None)  # type: ignore[arg-type]
                _place(fleet)
                argv = (
                    "--gateway",
                    "gw1",
                    "--resync",
                    "3",
                    "--metrics-listen",
                    f"127.0.0.1:{PORT}",
                )
                agents.append(AgentProc(lab, *argv, env=env))
                fleet.agent = agents[0]
                conf = lab.wggw("peer", "config", "acme/laptop", env=env).stdout
                lab.client("acme").up_wireguard(conf)
                yield fleet
            finally:
                for agent in agents:
                    agent.stop(signal.SIGKILL)
                    print(agent.log()[-4000:])  # shown by pytest when a test failed
                forget_agent_files()
                if not cluster.running:
                    cluster.start()
                lab.wggw("down", env=env, check=False)


def test_applies_only_its_gateways_part(fleet: Fleet) -> None:
    seen = fleet.lab.client("acme").fetch_retry(INET_URL_V4, attempts=10, delay=0.5)
    assert seen == EGRESS["acme"]
    addrs = fleet.lab.gw.run(["ip", "-4", "-o", "addr", "show"]).stdout
    assert EGRESS["acme"] in addrs
    assert EGRESS["globex"] not in addrs, "globex is gw2's, not this gateway's"
    with fleet.store() as s:
        globex_key = next(p.public_key for p in s.load().peers if p.tenant == "globex")
    assert globex_key not in fleet.device_keys()
    assert len(fleet.device_keys()) == 1


def _report(fleet: Fleet):
    with fleet.store() as s:
        return (
            next((r for r in s.reports() if r.gateway == "gw1"), None),
            s.generation(),
            s.peer_reports("gw1"),
        )


def test_listen_wakes_the_agent_fast(fleet: Fleet) -> None:
    """Commits made in this process (an operator elsewhere): each reaches the device through
    NOTIFY; the counted notifications prove the path, the median proves it is not the poll."""
    before = fleet.metric("wggw_store_notifications_total")
    delays = []
    with fleet.store() as s:
        for i in range(8):
            key = _add_peer(s, f"n{i}")
            t0 = time.monotonic()
            _wait(lambda k=key: k in fleet.device_keys(), 5 * SCALE, f"peer n{i} on the device")
            delays.append(time.monotonic() - t0)
    assert fleet.metric("wggw_store_notifications_total") >= before + 8
    print(f"\ncommit -> on the device: p50 {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms")  # fmt: skip
    # While LISTENing the poll runs every 5 s: through it the median would be ~2.5 s.
    assert statistics.median(delays) < 0.5 * SCALE, delays


def _add_peer(store, name: str) -> str:
    from wggw.ops import objects

    return objects.add_peer(store, f"acme/{name}").public_key


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_reports_are_written(fleet: Fleet) -> None:
    fleet.lab.client("acme").fetch_retry(INET_URL_V4, attempts=10, delay=0.5)  # a handshake
    with fleet.store() as s:
        _add_peer(s, "r1")
        laptop = next(p.public_key for p in s.load().peers if p.ref == "acme/laptop")

    def seen() -> bool:  # the resync (every 3 s here) reads the device: its peers reported
        report, gen, peers = _report(fleet)
        mine = {p.public_key: p for p in peers}.get(laptop)
        return (
            report is not None
            and report.generation == gen
            and mine is not None
            and bool(mine.endpoint and mine.latest_handshake)
        )

    _wait(seen, 10 * SCALE, "gw1's report of the newest generation and laptop's handshake")
    report = _report(fleet)[0]
    assert report.healthy and report.error is None and report.pid == fleet.agent.proc.pid
    first = report.reported_at
    _wait(lambda: _report(fleet)[0].reported_at > first, 12 * SCALE, "a heartbeat or a round")


def test_store_down_keeps_the_data_plane_and_resyncs(fleet: Fleet) -> None:
    client = fleet.lab.client("acme")
    reconnects = fleet.metric("wggw_store_reconnects_total")
    fleet.cluster.stop()
    try:
        _wait(lambda: fleet.metric("wggw_store_up") == 0, 10 * SCALE, "wggw_store_up 0")
        for _ in range(3):  # the data plane stays: the tenant keeps leaving by its egress
            assert client.fetch(INET_URL_V4, timeout=2.0) == EGRESS["acme"]
            time.sleep(0.5)
        assert fleet.metric("wggw_store_errors_total") >= 1
        assert fleet.agent.proc.poll() is None
        # Drift while the store is away: repaired from the state last applied.
        repairs = fleet.metric('wggw_repairs_total{kind="nft"}')
        fleet.lab.gw.run(["nft", "delete", "table", "inet", "wggw"])
        _wait(
            lambda: (
                fleet.lab.gw.run(["nft", "list", "table", "inet", "wggw"], check=False).returncode
                == 0
            ),
            5 * SCALE,
            "wggw's nft table back without the store",
        )
        _wait(
            lambda: fleet.metric('wggw_repairs_total{kind="nft"}') >= repairs + 1,
            5 * SCALE,
            "the repair counted",
        )
        assert client.fetch(INET_URL_V4, timeout=2.0) == EGRESS["acme"]
    finally:
        fleet.cluster.start()
    _wait(lambda: fleet.metric("wggw_store_up") == 1, 20 * SCALE, "wggw_store_up 1")
    assert fleet.metric("wggw_store_reconnects_total") >= reconnects + 1
    fleet.agent.wait_log("store state=up", 5 * SCALE)
    with fleet.store() as s:  # a change after the return is applied (LISTEN again)
        key = _add_peer(s, "back")
    _wait(lambda: key in fleet.device_keys(), 5 * SCALE, "a peer added after the return")
    assert client.fetch(INET_URL_V4, timeout=2.0) == EGRESS["acme"]


def test_health_follows_the_uplink(fleet: Fleet) -> None:
    def health() -> dict:
        reply = agentclient.request({"op": "health"})
        assert reply is not None and reply["ok"], reply
        return reply

    _wait(lambda: health()["healthy"], 10 * SCALE, "healthy")
    fleet.lab.gw.run(["ip", "link", "set", fleet.lab.uplink_dev, "down"])
    try:
        reply = health()
        assert not reply["healthy"] and "down" in str(reply["uplink"]), reply
    finally:  # the kernel dropped main's default routes with the link: the lab's, back
        gw = fleet.lab.gw
        gw.run(["ip", "link", "set", fleet.lab.uplink_dev, "up"])
        gw.run(["ip", "-4", "route", "replace", "default", "via", INET_V4,
                "dev", fleet.lab.uplink_dev])  # fmt: skip
        gw.run(
            [
                "ip",
                "-6",
                "route",
                "replace",
                "default",
                "via",
                INET_V6,
                "dev",
                fleet.lab.uplink_dev,
            ],
            check=False,
        )  # fmt: skip (v6: DAD may lag)
    _wait(lambda: health()["healthy"], 10 * SCALE, "healthy again")
    fleet.lab.client("acme").fetch_retry(INET_URL_V4, attempts=10, delay=0.5)
