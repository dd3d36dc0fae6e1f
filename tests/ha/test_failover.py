"""Two gateways, one HA interface, real keepalived, real agents, real clients without keepalive:
the active gateway is broken each way in turn (cables pulled, everything SIGKILLed, everything
SIGSTOPped) and every time the standby must answer for the egress IPs and carry the clients'
tunnels within 3 s, with not one packet at the internet host from a wrong source; mending the
broken gateway must not cut the clients for longer than that either.

nopreempt, so the gateway that comes back stands by and the next cycle fails back to it: both
directions are measured. The benchmark (benchmarks/ha.py) does the same over >= 20 cycles
against the stock behaviour.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from wggwtest import pg_cluster

from wggw.lab import hacycle, hawggw
from wggw.lab import hafigures as hf
from wggw.lab.ha import WAYS, HaLab
from wggw.lab.netns import wait_until
from wggw.lab.pgcluster import Cluster

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
TARGET_S = 3.0  # issue 14: egress IP and client tunnel each back within 3 s (p99)
CYCLES_PER_WAY = int(os.environ.get("WGGW_HA_CYCLES", "2"))
TENANTS = ("acme", "globex")
HA_ENV = {"WGGW_HA_FAILBACK": "nopreempt"}


@pytest.fixture
def cluster(require_ha: None) -> Iterator[Cluster]:
    with pg_cluster("the HA tests") as c:
        yield c


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def test_failover_each_way_within_target_and_no_wrong_source(cluster: Cluster) -> None:
    with HaLab(TENANTS) as lab:
        fleet = hawggw.start(lab, cluster, TENANTS, HA_ENV)
        mon = hacycle.Monitor(lab, {t: hawggw.TENANTS[t]["egress"] for t in TENANTS}).start()
        assert mon.steady(60 * SCALE) == "gwa"  # the first gateway listed is the active one
        # The takeover kick needs each client's last endpoint in the store's peer reports.
        wait_until(lambda: fleet.reported_endpoints() >= len(TENANTS), timeout=30 * SCALE,
                   interval=0.2, what="the clients' endpoints in the peer reports")  # fmt: skip
        ways = [w for _ in range(CYCLES_PER_WAY) for w in WAYS]
        cycles = hacycle.run_cycles(lab, mon, ways, ready=fleet.healthy, timeout=40 * SCALE,
                                    settle=1.0, log=_log)  # fmt: skip
        whole_run_wrong = mon.watch().wrong
    summary = hf.by_way(cycles)
    print(summary, file=sys.stderr)
    assert len(cycles) == len(ways) and not any(c.error for c in cycles), summary
    assert {c.killed for c in cycles} == {"gwa", "gwb"}  # failover and failback both measured
    for c in cycles:
        what = f"{c.way} {c.killed}->{c.standby}: {summary}"
        assert c.egress_s is not None and c.egress_s <= TARGET_S * SCALE, what
        worst = c.worst_client_s
        assert worst is not None and worst <= TARGET_S * SCALE, what
        assert c.wrong == [], what
        # Mending the broken gateway (it stands by again) does not cut the clients either:
        # a thawed gateway's keepalived takes the addresses back as master without a notify,
        # and only the agent's resume kick (agent/stallwatch.py, agent/ha.py) spares the
        # clients WireGuard's own retry (5 s and more; ~15 s measured without the kick).
        assert c.mend_gap_s is not None and c.mend_gap_s <= TARGET_S * SCALE, what
    assert whole_run_wrong == (), whole_run_wrong
    assert not lab.leftovers(), lab.leftovers()
