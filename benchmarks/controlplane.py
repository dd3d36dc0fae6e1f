"""Control-plane measurements: cold apply (wggw vs naive vs the floor), and on a large gateway
one-peer add/remove end to end, `plan` with nothing to do, `status`, and key rotation."""

from __future__ import annotations

import shutil
import sys

from . import fleet as fleet_mod
from .lab import Bench, Site
from .measure import in_ns, naive, summary, wggw


def wggw_site(bench: Bench, label: str, base: fleet_mod.Fleet, client: bool = False):
    """A site whose gateway wggw has applied `base` to; returns (site, fleet, apply sample)."""
    site = bench.site(label, client)
    fl = base.on(site.ifname)
    fleet_mod.write_store(fl, site.dir / "state")
    sample = wggw(site.gw, site.dir / "state", "apply", "-q")
    return site, fl, sample


def naive_site(bench: Bench, label: str, base: fleet_mod.Fleet, client: bool = False):
    site = bench.site(label, client)
    fl = base.on(site.ifname)
    spec = fleet_mod.write_naive(fl, site.dir)
    sample = naive(site.gw, "apply", str(spec))
    return site, fl, sample, spec


def floor_site(bench: Bench, label: str, base: fleet_mod.Fleet) -> float:
    """The floor: wireguard-go start + one UAPI transaction + one nft -f + one ip -batch."""
    site = bench.site(label)
    try:
        fl = base.on(site.ifname)
        fleet_mod.write_store(fl, site.dir / "state")
        out = in_ns(
            site.gw,
            [sys.executable, "-m", "benchmarks.floor", str(site.dir / "state"), site.ifname],
        )
        return float(out.stdout.split()[-1])
    finally:
        site.close()


def cold_apply(bench: Bench, tenants: int, peers: int, repeats: int, log) -> dict:
    base = fleet_mod.make("x", tenants, peers)
    w, n, f, rss = [], [], [], []
    for r in range(repeats):
        site, _, sample = wggw_site(bench, f"cw{tenants}r{r}", base)
        site.close()
        w.append(sample.seconds)
        rss.append(sample.maxrss_mb)
        site, _, nsample, _ = naive_site(bench, f"cn{tenants}r{r}", base)
        site.close()
        n.append(nsample.seconds)
        f.append(floor_site(bench, f"cf{tenants}r{r}", base))
        log(
            f"cold apply {tenants}x{peers} run {r + 1}/{repeats}: "
            f"wggw {w[-1]:.2f}s naive {n[-1]:.2f}s "
            f"floor {f[-1]:.2f}s"
        )
    return {
        "tenants": tenants,
        "peers": tenants * peers,
        "wggw_s": summary(w),
        "naive_s": summary(n),
        "floor_s": summary(f),
        "wggw_maxrss_mb": summary(rss),
        "speedup_vs_naive": summary([b / a for a, b in zip(w, n, strict=True)]),
        "wggw_over_floor": summary([a / c for a, c in zip(w, f, strict=True)]),
    }


def one_peer(site: Site, fl, nsite: Site, spec, repeats: int) -> dict:
    """One-peer add and remove end to end, each command a fresh interpreter: the operator's one
    command `wggw peer add T/P --apply` (`peer remove --apply`), the naive regenerate + `wg
    syncconf` in the same round (so each ratio compares runs under the same load), and the
    two-command way (`peer add`, then `apply`)."""
    sd = site.dir / "state"
    tenant = fl.tenant_list[-1].name
    w: dict[str, list[float]] = {
        k: [] for k in ("add_s", "remove_s", "add_two_commands_s", "remove_two_commands_s")
    }
    n: dict[str, list[float]] = {"add_s": [], "remove_s": []}
    rss = []
    for verb, key in (("add", "add_s"), ("remove", "remove_s")):
        for r in range(repeats):
            a = wggw(site.gw, sd, "peer", verb, f"{tenant}/bench{r}", "--apply")
            w[key].append(a.seconds)
            rss.append(a.maxrss_mb)
            n[key].append(naive(nsite.gw, verb, str(spec)).seconds)
    for verb, key in (("add", "add_two_commands_s"), ("remove", "remove_two_commands_s")):
        for r in range(repeats):
            a = wggw(site.gw, sd, "peer", verb, f"{tenant}/two{r}")
            b = wggw(site.gw, sd, "apply", "-q")
            w[key].append(a.seconds + b.seconds)
            rss += [a.maxrss_mb, b.maxrss_mb]
    ratios = {
        f"{k[:-2]}_over_naive": summary([a / b for a, b in zip(w[k], n[k], strict=True)]) for k in n
    }
    return {
        "wggw": {**{k: summary(v) for k, v in w.items()}, **ratios, "maxrss_mb": max(rss)},
        "naive": {k: summary(v) for k, v in n.items()},
    }


def read_only(site: Site, repeats: int) -> dict:
    sd = site.dir / "state"
    plan = [wggw(site.gw, sd, "plan", "--detailed-exitcode") for _ in range(repeats)]
    status = [wggw(site.gw, sd, "status", "--json") for _ in range(repeats)]
    return {
        "plan_s": summary([s.seconds for s in plan]),
        "status_s": summary([s.seconds for s in status]),
        "maxrss_mb": max(s.maxrss_mb for s in plan + status),
    }


def rotation(site: Site, fl, spec, repeats: int) -> dict:
    """Rotate peer 0 of every tenant (T of the T x P peers: their keys are old), then put the
    store back and converge, so every run starts from the same gateway."""
    sd = site.dir / "state"
    db, backup = sd / "wggw.db", site.dir / "wggw.db.before-rotation"
    shutil.copy2(db, backup)
    w, _n, rss = [], [], []
    for _ in range(repeats):
        s = wggw(site.gw, sd, "rotate", "--older-than", "30d", "--json")
        w.append(s.seconds)
        rss.append(s.maxrss_mb)
        shutil.copy2(backup, db)
        wggw(site.gw, sd, "apply", "-q")
    return {"rotated": fl.tenants, "wggw_s": summary(w), "maxrss_mb": max(rss)}


def naive_rotation(site: Site, fl, spec, repeats: int) -> dict:
    n = []
    for _ in range(repeats):
        n.append(naive(site.gw, "rotate", str(spec), str(fl.tenants)).seconds)
        naive(site.gw, "sync", str(spec))
    return {"naive_s": summary(n)}
