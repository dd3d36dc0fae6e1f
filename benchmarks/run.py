"""wggw against the naive manager, in one run, in throwaway network namespaces.

    sudo .venv/bin/python benchmarks/run.py [--quick] [--json FILE] [--repeats N]

Full run: cold apply of 10x10, 100x10 and 1,000x10 tenants x peers; on the 10,000-peer gateway
(and a 100-peer one for the 1.5x comparison) one-peer add and remove end to end, `plan` with
nothing to do, `status`, rotation of 1,000 keys; data plane with 1 vs 1,000 tenants; peak memory;
bulk: `import wg-quick` and `peer add T/p{1..N}` at 1k/10k/50k, apply/plan/status at 50,000 peers;
onepeer: `peer add/remove --apply` through a running `wggw agent` at 10,000 peers (and 50,000
with --onepeer-50k): the agent's part p50/p99 and the whole command against the naive.
agent: at 10,000 and 50,000 peers apply/plan/status, wireguard-go RSS, then `wggw agent` idle
with /metrics scraped every 15 s (its CPU share, RSS, no-op resync), and time to repair per fault
kind over 20 trials each (benchmarks/agent.py).
fleet: agents on a throwaway PostgreSQL (benchmarks/fleet_agent.py): commit -> applied on a
1,000-peer gateway and the client's first answer p50/p99 over 100 changes, cold start of 3 gateways
x 3,000 peers against SQLite, `peer add` on PostgreSQL vs SQLite.
ha (full run, or --only ha): 21 failover cycles of a two-gateway HA interface against the stock
behaviour (benchmarks/ha.py).
`--quick` does the same at 10x10 with 1 vs 20 tenants in well under a minute (CI runs it).
Every figure is a median with min/max over the runs; every ratio compares runs of the same run.
Everything is torn down in a finally block (also on Ctrl-C); the JSON's "cleanup" lists
anything left behind (it should be empty).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from benchmarks import agent as agent_mod  # noqa: E402
from benchmarks import bulk  # noqa: E402
from benchmarks import controlplane as cp  # noqa: E402
from benchmarks import dataplane as dp  # noqa: E402
from benchmarks import fleet as fleet_mod  # noqa: E402
from benchmarks import fleet_agent as fleet_part  # noqa: E402
from benchmarks import ha as ha_part  # noqa: E402
from benchmarks import onepeer as one_peer_agent  # noqa: E402
from benchmarks.lab import Bench  # noqa: E402
from benchmarks.measure import rss_mb, summary  # noqa: E402
from benchmarks.report import print_table  # noqa: E402

FULL = {
    "cold": [(10, 10), (100, 10), (1000, 10)],
    "cold_repeats": [5, 3, 7],  # the 1,000-tenant ratio: a median of 7 on a noisy 2-core VM
    "big": (1000, 10),
    "small": (10, 10),
    "ops_repeats": 5,
    "rot_repeats": 3,
    "dp_tenants": (1, 1000),
    "dp_rounds": 5,
    "dp_count": 5000,
    "dp_seconds": 3.0,
    "bulk": [1000, 10000, 50000],
    "bulk_repeats": 3,
    "bulk_gateway": (1000, 50),
    "bulk_gateway_repeats": 2,
    "onepeer": [(1000, 10)],  # --onepeer-50k adds (1000, 50)
    "onepeer_repeats": 20,
    "agent_sizes": [(1000, 10), (1000, 50)],
    "agent_repeats": 3,
    "agent_resync": 60.0,
    "scrape_interval": 15.0,
    "scrapes": 10,
    "repair_gateway": (100, 10),
    "repair_trials": 20,
    "fleet_prop": (10, 100),  # the propagation gateway: tenants x peers
    "fleet_changes": 100,
    "fleet_cold": (30, 100),  # per gateway, three gateways
    "fleet_adds": 20,
    "ha_cycles": 21,  # failover cycles (7 per way; every second one a failback)
    "ha_stock": 3,  # the same without wggw's takeover kick (the clients' ~15 s retry)
}
QUICK = {
    "cold": [(10, 10)],
    "cold_repeats": [2],
    "big": (10, 10),
    "small": (2, 5),
    "ops_repeats": 2,
    "rot_repeats": 1,
    "dp_tenants": (1, 20),
    "dp_rounds": 1,
    "dp_count": 300,
    "dp_seconds": 0.5,
    "bulk": [200],
    "bulk_repeats": 1,
    "bulk_gateway": (2, 20),
    "bulk_gateway_repeats": 1,
    "onepeer": [(2, 5)],
    "onepeer_repeats": 3,
    "agent_sizes": [(2, 20)],
    "agent_repeats": 1,
    "agent_resync": 2.0,
    "scrape_interval": 1.0,
    "scrapes": 6,
    "repair_gateway": (2, 5),
    "repair_trials": 3,
    "fleet_prop": (2, 5),
    "fleet_changes": 10,
    "fleet_cold": (2, 5),
    "fleet_adds": 3,
    "ha_cycles": 3,
    "ha_stock": 1,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ),
        "?",
    )

    def ver(*a):
        out = subprocess.run(a, capture_output=True, text=True).stdout
        return out.strip().splitlines()[:1]

    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "wireguard_go": ver("wireguard-go", "--version"),
        "iptables": ver("iptables", "--version"),
        "nft": ver("nft", "--version"),
    }


def ops(bench: Bench, cfg: dict, results: dict) -> None:
    """One-peer changes, plan, status and rotation on the big and small gateways."""
    out = results["operations"] = {}
    for key in ("small", "big"):
        t, p = cfg[key]
        base = fleet_mod.make("x", t, p)
        site, fl, _ = cp.wggw_site(bench, f"o{key}", base)
        nsite, nfl, _, spec = cp.naive_site(bench, f"n{key}", base)
        r = cfg["ops_repeats"]
        entry = {
            "tenants": t,
            "peers": t * p,
            **cp.one_peer(site, fl, nsite, spec, r),
            **cp.read_only(site, r),
        }
        if key == "big":
            entry["rotation"] = {
                **cp.rotation(site, fl, spec, cfg["rot_repeats"]),
                **cp.naive_rotation(nsite, nfl, spec, cfg["rot_repeats"]),
            }
            results["memory"] = {
                "wireguard_go_wggw_mb": _wg_rss(site.gw),
                "wireguard_go_naive_mb": _wg_rss(nsite.gw),
            }
        out[key] = entry
        log(
            f"operations at {t * p} peers: add {entry['wggw']['add_s']['median']:.2f}s "
            f"(naive {entry['naive']['add_s']['median']:.2f}s), "
            f"plan {entry['plan_s']['median']:.2f}s"
        )
        site.close()
        nsite.close()


def _wg_rss(ns: str) -> float:
    pids = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True
    ).stdout.split()
    return max(
        (
            rss_mb(int(p))
            for p in pids
            if b"wireguard-go" in Path(f"/proc/{p}/cmdline").read_bytes()
        ),
        default=0.0,
    )


def dataplane(bench: Bench, cfg: dict, results: dict) -> None:
    sites = {}
    for n in cfg["dp_tenants"]:
        base = fleet_mod.make("x", n, 1)
        site, fl, _ = cp.wggw_site(bench, f"dw{n}", base, client=True)
        dp.attach_client(site, fl, 1800)
        sites[f"wggw_{n}"] = site
        site, fl, _, _ = cp.naive_site(bench, f"dn{n}", base, client=True)
        dp.attach_client(site, fl, 1800)
        sites[f"naive_{n}"] = site
        log(f"data plane sites with {n} tenant(s) ready")
    raw = dp.measure(sites, cfg["dp_rounds"], cfg["dp_count"], cfg["dp_seconds"], log)
    lo, hi = cfg["dp_tenants"]
    out = {
        "tenants": [lo, hi],
        "path": "client wireguard-go -> gw wireguard-go -> tenant routing + SNAT -> inet",
    }
    for metric, values in raw.items():
        out[metric] = {k: summary(v) for k, v in values.items()}
        for who in ("wggw", "naive"):
            out[metric][f"{who}_{hi}_over_{lo}"] = summary(
                [b / a for a, b in zip(values[f"{who}_{lo}"], values[f"{who}_{hi}"], strict=True)]
            )
    results["dataplane"] = out
    results.setdefault("memory", {})["wireguard_go_dataplane_mb"] = {
        k: _wg_rss(s.gw) for k, s in sites.items()
    }
    for s in sites.values():
        s.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (seconds; CI)")
    ap.add_argument(
        "--json",
        type=Path,
        help="where to write the results (default benchmarks/results[-quick].json)",
    )
    ap.add_argument(
        "--only",
        choices=("cold", "ops", "dataplane", "bulk", "onepeer", "agent", "fleet", "ha"),
        action="append",
        help="run only these parts",
    )
    ap.add_argument(
        "--onepeer-50k",
        action="store_true",
        help="also the one-peer change through the agent at 50,000 peers (minutes of setup)",
    )
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("run.py needs root (network namespaces, wireguard-go)", file=sys.stderr)
        return 2
    cfg = QUICK if args.quick else FULL
    default = Path(__file__).resolve().parent / (
        "results-quick.json" if args.quick else "results.json"
    )
    path = args.json or default
    parts = args.only or ["cold", "ops", "dataplane", "bulk", "onepeer", "agent", "fleet"]
    if not args.only and not args.quick:
        parts.append("ha")  # minutes of failover cycles: the full run only (or --only ha)
    results: dict = {
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "started": time.time(),
    }
    bench = Bench()
    code = 0
    try:
        if "cold" in parts:
            results["cold_apply"] = [
                cp.cold_apply(bench, t, p, r, log)
                for (t, p), r in zip(cfg["cold"], cfg["cold_repeats"], strict=True)
            ]
        if "ops" in parts:
            ops(bench, cfg, results)
        if "dataplane" in parts:
            dataplane(bench, cfg, results)
        if "bulk" in parts:
            results["bulk"] = {
                "sizes": bulk.import_and_add(bench, cfg["bulk"], cfg["bulk_repeats"], log),
                "gateway": bulk.gateway(
                    bench, *cfg["bulk_gateway"], cfg["bulk_gateway_repeats"], log
                ),
            }
        if "onepeer" in parts:
            sizes = cfg["onepeer"] + ([(1000, 50)] if args.onepeer_50k else [])
            repeats = cfg["onepeer_repeats"]
            results["one_peer_agent"] = [
                one_peer_agent.through_agent(bench, t, p, repeats, log) for t, p in sizes
            ]
        if "agent" in parts:
            results["agent"] = {  # part by part: a failed part keeps the others' figures
                "scale": [agent_mod.scale(bench, t, p, cfg, log) for t, p in cfg["agent_sizes"]]
            }
            results["agent"]["repairs"] = agent_mod.repairs(
                bench, *cfg["repair_gateway"], cfg["repair_trials"], log
            )
        if "fleet" in parts:  # issue 13: agents on PostgreSQL (benchmarks/fleet_agent.py)
            results["fleet"] = fleet_part.run_part(bench, cfg, log)
        if "ha" in parts:  # issue 14: two-gateway failover (benchmarks/ha.py)
            results["ha"] = ha_part.run_part(cfg, log)
            for line in ha_part.lines(results["ha"]):
                log(line)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        results["interrupted"] = True
        code = 130
    finally:
        bench.close()
        results["cleanup"] = {"run_id": bench.run_id, "leftovers": bench.leftovers()}
        results["seconds"] = time.time() - results["started"]
        path.write_text(json.dumps(results, indent=1))
    print_table(results)
    log(f"wrote {path} ({results['seconds']:.0f} s)")
    return code or (1 if results["cleanup"]["leftovers"] else 0)


if __name__ == "__main__":
    sys.exit(main())
