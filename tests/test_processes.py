"""The real CLI in separate processes: parallel writers, and no pyroute2 for commands
that do not touch the kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from wggwtest import ROOT, run_wggw

N = 20


def test_parallel_peer_adds_lose_nothing_and_share_no_address(gw, state_dir):
    env = {"WGGW_LOCK_TIMEOUT": "120"}
    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(
            pool.map(
                lambda i: run_wggw(state_dir, "peer", "add", f"acme/p{i}", env=env, timeout=180),
                range(N),
            )
        )
    assert [r.returncode for r in results] == [0] * N, [r.stderr for r in results if r.returncode]
    peers = json.loads(run_wggw(state_dir, "peer", "list", "--json").stdout)
    assert sorted(p["name"] for p in peers) == sorted(f"p{i}" for i in range(N))
    addresses = [a for p in peers for a in p["addresses"]]
    assert len(addresses) == len(set(addresses)) == 2 * N
    assert len({p["public_key"] for p in peers}) == N


def _modules_after(state_dir, *args: str) -> set[str]:
    code = (
        "import sys\nfrom wggw.cli.app import main\n"
        "sys.argv = ['wggw', '--state-dir', sys.argv[1], *sys.argv[2:]]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code, str(state_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return set(res.stderr.splitlines())


def test_commands_off_the_kernel_do_not_import_pyroute2(gw, state_dir):
    gw("peer", "add", "acme/alice")
    for args in (
        ["--help"],
        ["peer", "list"],
        ["peer", "config", "acme/alice"],
        ["tenant", "show", "acme"],
        ["plan", "--help"],
    ):
        modules = _modules_after(state_dir, *args)
        assert not any(m == "pyroute2" or m.startswith("pyroute2.") for m in modules), args


# What the hot path must not load: the kernel code and the libraries only some commands need.
HEAVY = (
    "pyroute2",
    "nacl",
    "jinja2",
    "segno",
    "wgconfig",
    "prometheus_client",
    "rich",
    "wggw.backends",
    "wggw.ops.converge",
    "wggw.ops.rotation",
    "wggw.ops.transfer",
)


def _loaded(modules: set[str], names) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_help_loads_neither_the_store_nor_the_operations(state_dir):
    """`wggw --help` is typer and wggw's CLI modules only (measured: ~0.1 s CPU)."""
    modules = _modules_after(state_dir, "--help")
    assert _loaded(modules, (*HEAVY, "wggw.store", "wggw.ops", "sqlite3", "pydantic")) == []


def test_store_commands_load_only_what_they_use(gw, state_dir):
    gw("peer", "add", "acme/alice")
    for args in (
        ["peer", "list"],
        ["peer", "show", "acme/alice"],
        ["tenant", "list"],
        ["interface", "show", "wg0"],
        ["peer", "remove", "acme/alice"],
    ):
        modules = _modules_after(state_dir, *args)
        assert _loaded(modules, HEAVY) == [], args
