"""High availability (issue 14): failover of a two-gateway HA interface, in one run.

    sudo .venv/bin/python benchmarks/run.py --only ha      (or: python -m benchmarks.ha)

The HA lab (wggw/lab/ha.py): two gateway namespaces on shared client and uplink segments, an
agent (`wggw agent --gateway`) and keepalived on the configuration it renders in each, one
throwaway PostgreSQL, clients without keepalive sending a steady UDP probe through the tunnel,
and the internet host capturing every source. nopreempt, so each cycle breaks whichever
gateway is active and the traffic alternates (failover, then failback), the three ways in turn
(cables pulled; agent, keepalived and wireguard-go SIGKILLed; all SIGSTOPped).

Per cycle: egress IP answering from the standby, each client's first good reply (worst client),
wrong-source packets at the internet host, the longest client outage after mending. p50/p99
against the targets (p99 <= 3 s each, 0 wrong-source) and against the stock behaviour measured
in the same run on a fresh lab: the same keepalived without wggw's notify script, so the
addresses move and nobody starts a handshake (clients wait for their own ~15 s retry).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from wggw.lab import hacycle, hawggw  # noqa: E402
from wggw.lab import hafigures as hf  # noqa: E402
from wggw.lab.ha import WAYS, HaLab  # noqa: E402
from wggw.lab.netns import wait_until  # noqa: E402
from wggw.lab.pgcluster import Cluster  # noqa: E402

TARGET_S = 3.0
TENANTS = ("acme", "globex")
HA_ENV = {"WGGW_HA_FAILBACK": "nopreempt"}
MAX_LABS = 4  # fresh labs after cycles that never settled
CYCLE_TIMEOUT = 60.0  # s: well over the stock ~15 s retry (twice: failover, then failback)


def cycles(
    cluster: Cluster, n: int, kick: bool, log: Callable[[str], None]
) -> tuple[list[hf.Cycle], list[str]]:
    """`n` cycles (the ways in turn), with `kick` False the stock behaviour. A cycle after
    which the lab never settles (its `error`: a product failure, counted as such) ends that
    lab; the remaining cycles run on a fresh one (at most MAX_LABS). Also what the labs left
    behind after their teardown (should be nothing)."""
    done: list[hf.Cycle] = []
    left: list[str] = []
    for _ in range(MAX_LABS):
        if len(done) >= n:
            break
        ways = [WAYS[(len(done) + i) % len(WAYS)] for i in range(n - len(done))]
        with HaLab(TENANTS) as lab:
            fleet = hawggw.start(lab, cluster, TENANTS, HA_ENV, kick=kick)
            mon = hacycle.Monitor(lab, {t: hawggw.TENANTS[t]["egress"] for t in TENANTS})
            mon.start().steady(60.0)
            wait_until(lambda f=fleet: f.reported_endpoints() >= len(TENANTS), timeout=30.0,
                       interval=0.2, what="the clients' endpoints in the peer reports")  # fmt: skip
            done += hacycle.run_cycles(lab, mon, ways, ready=fleet.healthy,
                                       timeout=CYCLE_TIMEOUT, settle=1.0, log=log)  # fmt: skip
        left += lab.leftovers()
    return done, left


def run_part(cfg: dict, log: Callable[[str], None]) -> dict:
    """The "ha" part of benchmarks/run.py: cfg["ha_cycles"] with the kick, cfg["ha_stock"]
    stock; figures, targets and same-run ratios."""
    cluster = Cluster()
    started = time.time()
    try:
        cluster.start()
        log(f"ha: {cfg['ha_cycles']} failover cycles with wggw's takeover kick")
        wggw, left = cycles(cluster, cfg["ha_cycles"], True, log)
        log(f"ha: {cfg['ha_stock']} stock cycles (no kick: the clients' own retry)")
        stock, left_stock = cycles(cluster, cfg["ha_stock"], False, log)
    finally:
        cluster.remove()
    out = report(wggw, stock, time.time() - started)
    out["leftovers"] = left + left_stock
    return out


def report(wggw: list[hf.Cycle], stock: list[hf.Cycle], seconds: float) -> dict:
    total, base = hf.summarize(wggw), hf.summarize(stock)
    out: dict = {
        "cycles": len(wggw),
        "failbacks": sum(1 for c in wggw if c.standby == "gwa"),
        "wggw": total,
        "by_way": hf.by_way(wggw),
        "stock": base,
        "per_cycle": [_row(c) for c in wggw],
        "stock_per_cycle": [_row(c) for c in stock],
        "seconds": round(seconds, 1),
    }
    egress, client = total.get("egress_s"), total.get("client_s")
    out["targets"] = {
        "egress_p99_le_3s": bool(egress and egress["p99"] <= TARGET_S),  # type: ignore[index]
        "client_p99_le_3s": bool(client and client["p99"] <= TARGET_S),  # type: ignore[index]
        "wrong_source_0": total["wrong_source"] == 0 and base["wrong_source"] == 0,
        "no_missing": total["egress_s_missing"] == 0 and total["client_s_missing"] == 0,
        "all_cycles_settled": not total["errors"],
    }
    stock_client = base.get("client_s")
    if client and stock_client:
        out["client_stock_over_wggw"] = {
            q: round(stock_client[q] / client[q], 2)  # type: ignore[index]
            for q in ("p50", "p99")
            if client[q]  # type: ignore[index]
        }
    return out


def _row(c: hf.Cycle) -> dict:
    return {
        "way": c.way,
        "from": c.killed,
        "to": c.standby,
        "egress_s": _r(c.egress_s),
        "client_s": {t: _r(v) for t, v in c.client_s.items()},
        "wrong": len(c.wrong),
        "wrong_lines": c.wrong[:5],
        "mend_gap_s": _r(c.mend_gap_s),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def lines(part: dict) -> list[str]:
    """The figures as a few lines for the console."""
    out = [f"HA failover: {part['cycles']} cycles ({part['failbacks']} failbacks), "
           f"stock {part['stock']['cycles']}"]  # fmt: skip
    for label, fig in (("wggw", part["wggw"]), ("stock", part["stock"])):
        out.append(
            f"  {label:5}: egress {fig['egress_s']} client {fig['client_s']} "
            f"(missing {fig['egress_s_missing']}/{fig['client_s_missing']}) "
            f"wrong-source {fig['wrong_source']} after-mend {fig['mend_gap_s']}"
        )
    for way, fig in part["by_way"].items():
        out.append(f"  {way:6}: egress {fig['egress_s']} client {fig['client_s']}")
    ratio = part.get("client_stock_over_wggw")
    out.append(f"  targets {part['targets']}; client recovery stock/wggw {ratio}")
    return out


def main() -> int:
    import json

    def log(msg: str) -> None:
        print(f"[ha] {msg}", file=sys.stderr, flush=True)

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    stock = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    part = run_part({"ha_cycles": n, "ha_stock": stock}, log)
    print(json.dumps(part, indent=1))
    for line in lines(part):
        log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
