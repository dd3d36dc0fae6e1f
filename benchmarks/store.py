"""`peer add` on the PostgreSQL store against SQLite (plain and with sealed secrets), in one run:
the operation in-process (store work only) and the real CLI as a process (what an operator
waits for). PostgreSQL is a throwaway local cluster (wggw.lab.pgcluster, unix socket, fsync
off like the SQLite figures' page cache): the figures compare store code paths, not disks.

    sudo .venv/bin/python benchmarks/store.py [--adds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from benchmarks.measure import summary  # noqa: E402
from wggw.lab.pgcluster import Cluster, unusable  # noqa: E402

KINDS = ("sqlite", "sqlite-sealed", "postgresql")


def _env(kind: str, work: Path, cluster: Cluster) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WGGW_DB", "WGGW_KEY_FILE")}
    if kind != "sqlite":
        env["WGGW_KEY_FILE"] = str(work / "key")
    if kind == "postgresql":
        env["WGGW_DB"] = cluster.createdb()
    return env


def _cli(state: Path, env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "wggw.cli.app", "--state-dir", str(state), *args],
        check=True, capture_output=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=60,
    )  # fmt: skip
    return time.perf_counter() - started


def _in_process(state: Path, env: dict[str, str], adds: int) -> list[float]:
    from wggw.ops import objects
    from wggw.ops.state import open_existing

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        out = []
        with open_existing(state) as store:
            for i in range(adds):
                started = time.perf_counter()
                objects.add_peer(store, f"acme/i{i}")
                out.append(time.perf_counter() - started)
        return out
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure(cluster: Cluster, adds: int) -> dict:
    results: dict = {}
    for kind in KINDS:
        work = Path(tempfile.mkdtemp(prefix=f"wggw-bench-{kind}-"))
        try:
            results[kind] = _one_store(kind, work, cluster, adds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    base = results["sqlite"]
    for kind in KINDS:
        for key in ("cli_peer_add_s", "op_peer_add_s"):
            results[kind][key.replace("_s", "_vs_sqlite")] = round(
                results[kind][key]["median"] / base[key]["median"], 2
            )
    return results


def _one_store(kind: str, work: Path, cluster: Cluster, adds: int) -> dict:
    env, state = _env(kind, work, cluster), work / "state"
    _cli(state, env, "init")
    _cli(state, env, "interface", "add", "wg0", "--listen-port", "51820",
         "--endpoint", "192.0.2.1:51820")  # fmt: skip
    _cli(state, env, "tenant", "add", "acme", "--pool", "10.0.0.0/16",
         "--egress", "203.0.113.1")  # fmt: skip
    cli = [_cli(state, env, "peer", "add", f"acme/c{i}") for i in range(adds)]
    return {
        "cli_peer_add_s": summary(cli),
        "op_peer_add_s": summary(_in_process(state, env, adds * 4)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=20, help="CLI `peer add` runs per store")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    why = unusable()
    if why:
        print(f"benchmarks/store.py: {why}", file=sys.stderr)
        return 2
    cluster = Cluster()
    try:
        cluster.start()
        results = measure(cluster, args.adds)
    finally:
        cluster.remove()
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
