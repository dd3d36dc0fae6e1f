"""The agent part's rows of the benchmark table (benchmarks/agent.py's results)."""

from __future__ import annotations


def _s(x: dict | None, digits: int = 3) -> str:
    if not x:
        return "-"
    return f"{x['median']:.{digits}f}s [{x['min']:.{digits}f}-{x['max']:.{digits}f}]"


def _scale_rows(row: dict) -> list[tuple[str, str, str, str]]:
    n, a = row["peers"], row["agent"]
    at = f"at {n} peers ({row['tenants']} tenants)"
    rss_target = "target < 150 MB" if n <= 10000 else "target < 300 MB" if n <= 50000 else ""
    return [
        (f"apply (cold) {at}", f"{row['apply_s']:.3f}s", "-", "CLI, fresh gateway"),
        (f"plan (nothing to do) {at}", _s(row["plan_s"]), "-", "CLI"),
        (f"status {at}", _s(row["status_s"]), "-", "CLI"),
        (f"peak RSS of a wggw command {at}", f"{row['wggw_maxrss_mb']:.0f} MB", "-", ""),
        (f"wireguard-go RSS {at}", f"{row['wireguard_go_mb']:.0f} MB", "-", ""),
        (f"agent start (nothing to do) {at}", f"{row['agent_start_s']:.2f}s", "-", "process"),
        (
            f"agent RSS, steady {at}",
            f"{a['rss_mb']:.0f} MB",
            "-",
            f"peak {a['peak_rss_mb']:.0f} MB; {rss_target}",
        ),
        (
            f"agent idle CPU {at}",
            f"{a['cpu_share'] * 100:.2f}%",
            "-",
            f"of a core over {a['window_s']:.0f}s, scraped every {a['scrape_interval_s']:.0f}s;"
            " target < 2%",
        ),
        (
            f"agent no-op resync {at}",
            _s(a["resync_s"]),
            "-",
            f"CPU {a['resync_cpu']['cpu_s_per_resync'] or 0:.3f}s each; target < 1 s",
        ),
        (f"/metrics scrape {at}", _s(a["scrape_s"]), "-", f"{a['scrape_bytes']} bytes"),
    ]


def rows(agent: dict | None) -> list[tuple[str, str, str, str]]:
    if not agent:
        return []
    out = [r for row in agent.get("scale", []) for r in _scale_rows(row)]
    rep = agent.get("repairs")
    if rep:
        for kind, k in rep["kinds"].items():
            out.append(
                (
                    f"repair: {kind} ({rep['peers']} peers)",
                    f"p50 {k['p50_s'] * 1000:.0f} ms",
                    "-",
                    f"p99 {k['p99_s'] * 1000:.0f} ms over {len(k['runs'])}; target p99 <= 1 s"
                    + (f"; {k['agent_errors']} round(s) failed" if k.get("agent_errors") else ""),
                )
            )
    return out
