"""Cold apply, same-run A/B: `wggw apply` of 1,000 tenants x 10 peers on a fresh gateway by
this checkout and by other checkouts (e.g. `git archive main | tar -x -C /tmp/base`), each
round also the floor (benchmarks/floor.py), in alternation, so that every ratio compares
runs under the same load. No naive runs (run.py --only cold has them): a round takes
seconds, not half a minute.

    sudo .venv/bin/python -m benchmarks.coldab [--rounds N] [--tenants T] [OTHER_CHECKOUT...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from . import fleet as fleet_mod
from .controlplane import floor_site
from .lab import REPO, Bench, compiled
from .measure import in_ns


def _apply(bench: Bench, label: str, base: fleet_mod.Fleet, checkout: Path) -> float:
    site = bench.site(label)
    try:
        fleet_mod.write_store(base.on(site.ifname), site.dir / "state")
        argv = [sys.executable, "-m", "wggw.cli.entry", "--state-dir", str(site.dir / "state")]
        if checkout == REPO:
            return in_ns(site.gw, [*argv, "apply", "-q"]).seconds
        # Another checkout: first on the path, and the working directory (python -m puts it
        # first) so that its wggw, not this one's, is imported.
        code = f"import os,sys; os.chdir({str(checkout)!r}); sys.path.insert(0, os.getcwd()); "
        code += "import runpy; sys.argv = ['wggw'] + sys.argv[1:]; "
        code += "runpy.run_module('wggw.cli.entry', run_name='__main__')"
        return in_ns(site.gw, [sys.executable, "-c", code, *argv[3:], "apply", "-q"]).seconds
    finally:
        site.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--peers", type=int, default=10)
    p.add_argument("others", nargs="*", type=Path, help="other checkouts to compare")
    args = p.parse_args(argv)
    checkouts = [REPO, *(c.resolve() for c in args.others)]
    for checkout in checkouts:
        compiled(checkout)
    base = fleet_mod.make("x", args.tenants, args.peers)
    floors: list[float] = []
    times: dict[Path, list[float]] = {c: [] for c in checkouts}
    bench = Bench()
    try:
        for r in range(args.rounds):
            floors.append(floor_site(bench, f"f{r}", base))
            for i, c in enumerate(checkouts):
                times[c].append(_apply(bench, f"a{r}c{i}", base, c))
            cells = " ".join(f"{t[-1]:.3f}s ({t[-1] / floors[-1]:.2f}x)" for t in times.values())
            print(f"round {r + 1}: floor {floors[-1]:.3f}s  {cells}  load {os.getloadavg()[0]:.1f}")
        for c, t in times.items():
            ratios = [a / f for a, f in zip(t, floors, strict=True)]
            print(
                f"{c}: median {statistics.median(t):.3f}s, floor {statistics.median(floors):.3f}s,"
                f" wggw/floor median {statistics.median(ratios):.2f}x"
                f" [{min(ratios):.2f}-{max(ratios):.2f}]"
            )
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
