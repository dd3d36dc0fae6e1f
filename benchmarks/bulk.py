"""Bulk measurements: `import wg-quick` and `peer add 'T/p{1..N}'` at several sizes (each into a
fresh store with one tenant whose pool holds them all), then `apply` (cold), `plan` (nothing to
do) and `status` on a gateway of the largest size (tenants x 50 peers, real wireguard-go).

Each command is the operator's one command in a fresh interpreter, timed end to end.
"""

from __future__ import annotations

import ipaddress

from wggw.core import keys

from . import fleet as fleet_mod
from .lab import GW_UPLINK, LISTEN_PORT, Bench
from .measure import summary, wggw

POOL = ipaddress.ip_network("10.128.0.0/14")  # room for 250,000 peers in one tenant


def _fresh_store(site, sd) -> None:
    wggw(site.gw, sd, "init")
    wggw(
        site.gw,
        sd,
        "interface",
        "add",
        site.ifname,
        "--listen-port",
        str(LISTEN_PORT),
        "--endpoint",
        f"{GW_UPLINK}:{LISTEN_PORT}",
    )
    wggw(
        site.gw,
        sd,
        "tenant",
        "add",
        "bulk",
        "--pool",
        str(POOL),
        "--egress",
        "198.18.200.1",
        "--uplink",
        "uplink0",
    )


def wg_quick_text(n: int) -> str:
    """A wg-quick server config of `n` peers (real keys and PSKs, one host address each)."""
    lines = [
        "[Interface]",
        f"PrivateKey = {keys.generate_private().reveal()}",
        f"ListenPort = {LISTEN_PORT}",
        "",
    ]
    first = int(POOL.network_address) + 2
    for i in range(n):
        lines += [
            f"# Name = bulk/c{i}",
            "[Peer]",
            f"PublicKey = {keys.keypair()[1]}",
            f"PresharedKey = {keys.generate_psk().reveal()}",
            f"AllowedIPs = {ipaddress.IPv4Address(first + i)}/32",
            "",
        ]
    return "\n".join(lines)


def import_and_add(bench: Bench, sizes: list[int], repeats: int, log) -> list[dict]:
    rows = []
    for n in sizes:
        site = bench.site(f"b{n}")
        conf = site.dir / "wg0.conf"
        conf.write_text(wg_quick_text(n))
        imp, add, rss = [], [], []
        for r in range(repeats):
            for kind, args, out in (
                ("import", ["import", "wg-quick", str(conf), "--tenant", "bulk"], imp),
                ("add", ["peer", "add", f"bulk/p{{1..{n}}}"], add),
            ):
                sd = site.dir / f"state-{kind}{r}"
                _fresh_store(site, sd)
                s = wggw(site.gw, sd, *args, timeout=900)
                out.append(s.seconds)
                rss.append(s.maxrss_mb)
        site.close()
        rows.append(
            {"peers": n, "import_s": summary(imp), "add_s": summary(add), "maxrss_mb": max(rss)}
        )
        log(
            f"bulk at {n} peers: import {rows[-1]['import_s']['median']:.2f}s, "
            f"add {rows[-1]['add_s']['median']:.2f}s"
        )
    return rows


def gateway(bench: Bench, tenants: int, peers: int, repeats: int, log) -> dict:
    """apply (cold, on a fresh gateway each run), then plan and status at tenants x peers."""
    base = fleet_mod.make("x", tenants, peers)
    applies, rss = [], []
    for r in range(repeats):
        site = bench.site(f"ga{r}")
        sd = site.dir / "state"
        fleet_mod.write_store(base.on(site.ifname), sd)
        s = wggw(site.gw, sd, "apply", "-q", timeout=1800)
        applies.append(s.seconds)
        rss.append(s.maxrss_mb)
        if r < repeats - 1:
            site.close()
    plan = [wggw(site.gw, sd, "plan", "--detailed-exitcode") for _ in range(repeats)]
    status = [wggw(site.gw, sd, "status", "--json", timeout=900) for _ in range(repeats)]
    site.close()
    out = {
        "tenants": tenants,
        "peers": tenants * peers,
        "apply_s": summary(applies),
        "plan_s": summary([s.seconds for s in plan]),
        "status_s": summary([s.seconds for s in status]),
        "maxrss_mb": max(rss + [s.maxrss_mb for s in plan + status]),
    }
    log(
        f"gateway of {tenants * peers} peers: apply {out['apply_s']['median']:.2f}s, "
        f"plan {out['plan_s']['median']:.2f}s, status {out['status_s']['median']:.2f}s"
    )
    return out
