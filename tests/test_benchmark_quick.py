"""The benchmark keeps working: run `benchmarks/run.py --quick` (root, network namespaces) and
check that the JSON has every figure and ratio, and that the run left nothing behind.
No wall-clock time is asserted: these machines are shared and noisy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = {"median", "min", "max", "n", "runs"}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, wireguard-go)")
def test_quick_benchmark_reports_every_figure_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["mode"] == "quick" and not r.get("interrupted")
    cold = r["cold_apply"][0]
    for key in (
        "wggw_s",
        "naive_s",
        "floor_s",
        "speedup_vs_naive",
        "wggw_over_floor",
        "wggw_maxrss_mb",
    ):
        assert SUMMARY <= set(cold[key]), key
    for size in ("small", "big"):
        ops = r["operations"][size]
        for key in ("add_s", "remove_s"):
            assert SUMMARY <= set(ops["wggw"][key]) and SUMMARY <= set(ops["naive"][key])
            assert SUMMARY <= set(ops["wggw"][f"{key[:-2]}_over_naive"])
            assert SUMMARY <= set(ops["wggw"][f"{key[:-2]}_two_commands_s"])
        assert SUMMARY <= set(ops["plan_s"]) and SUMMARY <= set(ops["status_s"])
    rot = r["operations"]["big"]["rotation"]
    assert SUMMARY <= set(rot["wggw_s"]) and SUMMARY <= set(rot["naive_s"])
    dp = r["dataplane"]
    lo, hi = dp["tenants"]
    for metric in ("conn_per_s", "udp64_rx_pps"):
        for key in (
            f"wggw_{lo}",
            f"wggw_{hi}",
            f"naive_{lo}",
            f"naive_{hi}",
            f"wggw_{hi}_over_{lo}",
            f"naive_{hi}_over_{lo}",
        ):
            assert SUMMARY <= set(dp[metric][key]), (metric, key)
            assert dp[metric][key]["median"] > 0, (metric, key)
    assert r["memory"]["wireguard_go_wggw_mb"] > 0
    bulk = r["bulk"]
    for row in bulk["sizes"]:
        assert SUMMARY <= set(row["import_s"]) and SUMMARY <= set(row["add_s"])
    for key in ("apply_s", "plan_s", "status_s"):
        assert SUMMARY <= set(bulk["gateway"][key]), key
    for row in r["one_peer_agent"]:
        for verb in ("add", "remove"):
            v = row[verb]
            for key in ("agent_ms", "agent_cpu_ms", "whole_s", "naive_s", "whole_over_naive"):
                assert SUMMARY <= set(v[key]), (verb, key)
            assert v["paths"] == ["delta"] and v["agent_ms"]["n"] == row["repeats"]
    for row in r["agent"]["scale"]:
        a = row["agent"]
        assert row["wireguard_go_mb"] > 0 and a["rss_mb"] > 0 and a["cpu_share"] > 0
        assert a["scrapes"] >= 3 and SUMMARY <= set(a["resync_s"]), a
        assert a["resync_cpu"]["resyncs"] >= 1 and a["resync_cpu"]["cpu_s_per_resync"] > 0
    kinds = r["agent"]["repairs"]["kinds"]
    assert len(kinds) == 8 and all(len(k["runs"]) >= 1 for k in kinds.values()), kinds
    assert r["cleanup"]["leftovers"] == []
    run_id = r["cleanup"]["run_id"]
    assert not list(Path("/run/netns").glob(f"wb-*-{run_id}"))
    assert not list(Path("/var/run/wireguard").glob(f"wb{run_id}*"))
    assert "measurement" in res.stdout and "cleanup: nothing left behind" in res.stdout
