"""A real Prometheus server scrapes the agent while traffic flows; its PromQL answers match
what `wg show` and `wggw status --json` report, and every query of the Grafana dashboard runs
against it with a result.

Prometheus (Debian's package) runs in the lab's gateway namespace next to the agent, with its
own config and temp storage, scraping every second; the test reads its HTTP API with urllib.
Each tenant's client streams UDP to the internet host's echo port through the tunnel. Counters
grow between two readings, so a Prometheus sample taken after reading A and before reading B
lies between A and B; no other tolerance is needed."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import METRICS_PORT
from promserver import Prometheus

from wggw.lab.topology import INET_V4, INET_V6

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
EGRESS = {
    "acme": ("203.0.113.10", "2001:db8:ffff::10"),
    "globex": ("203.0.113.20", "2001:db8:ffff::20"),
}
DASHBOARD = Path(__file__).resolve().parents[2] / "templates" / "grafana-wggw.json"
SENDERS = 3  # UDP sockets per client and family: three conntrack entries per egress IP
# Runs in a client namespace: SENDERS sockets per address echo 1000-byte datagrams to the
# internet host's port 7 for at most argv[2] s.
STREAM = r"""
import socket, sys, time
end = time.monotonic() + float(sys.argv[2])
socks = [(socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM), a)
         for a in sys.argv[1].split(",") for _ in range(int(sys.argv[3]))]
for s, _ in socks:
    s.settimeout(0.05)
while time.monotonic() < end:
    for s, a in socks:
        s.sendto(b"x" * 1000, (a, 7))
        try:
            s.recv(2048)
        except OSError:
            pass
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def prom(agent_lab):
    lab, gw, agents = agent_lab
    streams = []
    server = Prometheus(lab.gw.name, lab.workdir, METRICS_PORT, timeout=60 * SCALE)
    try:
        for tenant in EGRESS:
            argv = ["ip", "netns", "exec", lab.client(tenant).name, sys.executable, "-c"]
            argv += [STREAM, f"{INET_V4},{INET_V6}", "600", str(SENDERS)]
            streams.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        wait_for(server, 'up{job="wggw"} == 1', 30 * SCALE)
        for tenant in EGRESS:  # traffic through each tenant, as Prometheus sees it
            expr = f'wggw_tenant_receive_bytes_total{{tenant="{tenant}"}} > 0'
            wait_for(server, expr, 30 * SCALE)
        yield server
    finally:
        for proc in streams:
            proc.kill()
            proc.wait(10)
        server.stop()


def wait_for(server: Prometheus, expr: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = server.query(expr)
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"no result for {expr} after {timeout}s")


def scraped_after(server: Prometheus, moment: float) -> None:
    """Wait until Prometheus holds a sample of the agent scraped after `moment` (Unix time)."""
    wait_for(server, f"timestamp(wggw_tenant_peers) > {moment}", 20 * SCALE)


def status(lab) -> dict:
    return json.loads(lab.wggw("status", "--json").stdout)


def wg_show(lab, ifname: str, what: str) -> dict[str, list[int]]:
    out = lab.gw.run(["wg", "show", ifname, what]).stdout
    return {f[0]: [int(x) for x in f[1:]] for f in (ln.split() for ln in out.splitlines())}


def by_tenant(values: dict[str, list[int]], keys: dict[str, str], column: int) -> dict:
    sums: dict[str, int] = {}
    for key, tenant in keys.items():
        sums[tenant] = sums.get(tenant, 0) + values.get(key, [0, 0])[column]
    return sums


def test_bytes_and_active_peers_match_wg_and_status(agent_lab, prom) -> None:
    lab, gw, _ = agent_lab
    before_status = status(lab)
    keys = {p["public_key"]: p["tenant"] for p in before_status["peers"]}
    before_wg = wg_show(lab, gw.ifname, "transfer")
    scraped_after(prom, time.time())
    got = {
        (what, t): prom.value(f'wggw_tenant_{what}_bytes_total{{tenant="{t}"}}')
        for what in ("receive", "transmit")
        for t in EGRESS
    }
    laptop = prom.value('wggw_peer_receive_bytes_total{tenant="acme",peer="laptop"}')
    after_wg = wg_show(lab, gw.ifname, "transfer")
    after_status = status(lab)
    for column, what in enumerate(("receive", "transmit")):
        low, high = by_tenant(before_wg, keys, column), by_tenant(after_wg, keys, column)
        for t in EGRESS:
            assert low[t] <= got[(what, t)] <= high[t], (what, t, low[t], got[(what, t)], high)
            assert high[t] > low[t], f"no {what} traffic for {t} while streaming"
    rx = {t["name"]: t["rx_bytes"] for t in before_status["tenants"]}
    rx_after = {t["name"]: t["rx_bytes"] for t in after_status["tenants"]}
    for t in EGRESS:
        assert rx[t] <= got[("receive", t)] <= rx_after[t], (t, rx, got, rx_after)
    acme_laptop = next(
        p["public_key"]
        for p in after_status["peers"]
        if (p["tenant"], p["name"]) == ("acme", "laptop")
    )
    assert before_wg[acme_laptop][0] <= laptop <= after_wg[acme_laptop][0]
    print(f"\n[prometheus] acme received {got[('receive', 'acme')]:.0f} bytes")
    # active peers: the agent's figure, status's and wg's own handshake times agree
    handshakes = wg_show(lab, gw.ifname, "latest-handshakes")
    now = time.time()
    for t in EGRESS:
        active_wg = sum(
            1 for k, tenant in keys.items() if tenant == t and now - handshakes[k][0] < 180
        )
        row = next(r for r in after_status["tenants"] if r["name"] == t)
        assert prom.value(f'wggw_tenant_active_peers{{tenant="{t}"}}') == active_wg
        assert row["active_peers"] == active_wg >= 1
        assert prom.value(f'wggw_tenant_peers{{tenant="{t}"}}') == row["peers"]


def _drift_changes(log: str) -> int:
    return sum(int(n) for n in re.findall(r"converged trigger=drift changes=(\d+)", log))


def test_repairs_after_a_fault_match_the_agent(agent_lab, prom) -> None:
    lab, _, agents = agent_lab
    agent = agents[-1]
    scraped_after(prom, time.time())
    before = prom.value("sum(wggw_repairs_total)")
    before_nft = prom.value('wggw_repairs_total{kind="nft"}')
    log_before = agent.log()
    lab.gw.run(["nft", "flush", "table", "inet", "wggw"])
    agent.wait_log(
        "converged trigger=drift", 10 * SCALE, log_before.count("converged trigger=drift") + 1
    )
    time.sleep(1.0)  # a second round, if any, is logged too
    lab.wggw("plan", "--detailed-exitcode")  # repaired
    repaired = _drift_changes(agent.log()) - _drift_changes(log_before)
    scraped_after(prom, time.time())
    assert prom.value("sum(wggw_repairs_total)") - before == repaired >= 1
    assert prom.value('wggw_repairs_total{kind="nft"}') > before_nft
    assert prom.value('increase(wggw_repairs_total{kind="nft"}[5m])') > 0
    assert prom.value("wggw_drift_changes") == len(status(lab)["drift"]) == 0
    assert prom.value("sum(wggw_contested_objects)") == 0


def _proc_conntrack(lab, egress: str) -> int | None:
    res = lab.gw.run(["cat", "/proc/net/nf_conntrack"], check=False)
    if res.returncode != 0:
        return None  # a kernel without the procfs view: the netlink count stands alone
    want = ipaddress.ip_address(egress)  # the file spells IPv6 addresses in full
    return sum(
        1
        for ln in res.stdout.splitlines()
        if [ipaddress.ip_address(a) for a in re.findall(r"dst=(\S+)", ln)[1:2]] == [want]
    )


def test_egress_port_usage_matches_conntrack(agent_lab, prom) -> None:
    lab, _, _ = agent_lab
    for tenant, egress in [(t, ip) for t, ips in EGRESS.items() for ip in ips]:
        series = f'{{tenant="{tenant}",egress="{egress}"}}'
        assert prom.value(f"wggw_egress_ports_available{series}") == 64512
        used = prom.value(f"wggw_egress_conntrack_entries{series}")
        seen = _proc_conntrack(lab, egress)
        print(f"\n[prometheus] {tenant} {egress}: {used:.0f} conntrack entries (proc: {seen})")
        assert used >= SENDERS
        if seen is not None:  # entries come and go between the two reads (cached up to 5 s)
            assert abs(used - seen) <= 3, (used, seen)


def _concrete(expr: str) -> str:
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "5m")
        .replace('=~"$tenant"', '=~"acme|globex"')
    )


def test_every_dashboard_query_answers(agent_lab, prom) -> None:
    lab, _, agents = agent_lab
    dash = json.loads(DASHBOARD.read_text())
    count = agents[-1].log().count("converged trigger=drift")
    lab.gw.run(["nft", "flush", "table", "inet", "wggw"])  # a repair for the repair panel
    agents[-1].wait_log("converged trigger=drift", 10 * SCALE, count + 1)
    scraped_after(prom, time.time())
    for var in dash["templating"]["list"]:
        metric, label = re.fullmatch(
            r"label_values\((\w+), (\w+)\)", var["query"]["query"]
        ).groups()
        assert set(prom.api(f"label/{label}/values", **{"match[]": metric})) >= set(EGRESS)
    answered = 0
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = _concrete(target["expr"])
            assert "$" not in expr, expr
            result = prom.query(expr)  # fails on an error answer
            assert result, f"panel {panel['title']!r}: no data for {expr}"
            answered += 1
    assert answered == sum(len(p["targets"]) for p in dash["panels"])
    # with this lab's data, the latency quantiles are numbers, not NaN
    p99 = _concrete(dash["panels"][4]["targets"][1]["expr"])
    assert 0 < prom.value(p99) < 30
