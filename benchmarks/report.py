"""Print the benchmark's results as one plain table (medians, [min-max] and ratios)."""

from __future__ import annotations

from .agentreport import rows as agent_rows


def _f(s: dict | None, unit: str = "s", digits: int = 3) -> str:
    if not s:
        return "-"
    return f"{s['median']:.{digits}f}{unit} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def _rows(r: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for c in r.get("cold_apply", []):
        rows.append(
            (
                f"cold apply {c['tenants']} tenants / {c['peers']} peers",
                _f(c["wggw_s"]),
                _f(c["naive_s"]),
                f"naive/wggw {_f(c['speedup_vs_naive'], 'x', 1)}; "
                f"wggw/floor {_f(c['wggw_over_floor'], 'x', 2)}"
                f" (floor {_f(c['floor_s'])})",
            )
        )
    for _key, o in r.get("operations", {}).items():
        n = o["peers"]
        w = o["wggw"]
        rows.append(
            (
                f"peer add --apply at {n} peers",
                _f(w["add_s"]),
                _f(o["naive"]["add_s"]),
                f"wggw/naive {_f(w.get('add_over_naive'), 'x', 2)}; "
                "naive: regenerate + wg syncconf",
            )
        )
        rows.append(
            (
                f"peer remove --apply at {n} peers",
                _f(w["remove_s"]),
                _f(o["naive"]["remove_s"]),
                f"wggw/naive {_f(w.get('remove_over_naive'), 'x', 2)}",
            )
        )
        rows.append(
            (
                f"peer add, then apply at {n} peers",
                _f(w.get("add_two_commands_s")),
                "-",
                "two commands",
            )
        )
        rows.append(
            (f"peer remove, then apply at {n} peers", _f(w.get("remove_two_commands_s")), "-", "")
        )
        rows.append((f"plan (nothing to do) at {n} peers", _f(o["plan_s"]), "-", ""))
        rows.append((f"status at {n} peers", _f(o["status_s"]), "-", ""))
        if "rotation" in o:
            rot = o["rotation"]
            rows.append(
                (
                    f"rotate {rot['rotated']} of {n} peers",
                    _f(rot["wggw_s"]),
                    _f(rot["naive_s"]),
                    "naive: one wg set per rotated peer",
                )
            )
    ops = r.get("operations", {})
    if "big" in ops and "small" in ops:
        big, small = ops["big"], ops["small"]
        for verb in ("add", "remove"):
            ratio = big["wggw"][f"{verb}_s"]["median"] / small["wggw"][f"{verb}_s"]["median"]
            rows.append(
                (
                    f"one-peer {verb} --apply {big['peers']} vs {small['peers']} peers",
                    f"{ratio:.2f}x",
                    "",
                    "target <= 1.5x",
                )
            )
    d = r.get("dataplane")
    if d:
        lo, hi = d["tenants"]
        for metric, label, unit in (
            ("conn_per_s", "new TCP conns/s", ""),
            ("udp64_rx_pps", "UDP 64 B pkt/s", ""),
        ):
            m = d[metric]
            for n in (lo, hi):
                rows.append(
                    (
                        f"{label}, {n} tenant(s)",
                        _f(m[f"wggw_{n}"], unit, 0),
                        _f(m[f"naive_{n}"], unit, 0),
                        "",
                    )
                )
            rows.append(
                (
                    f"{label}, {hi} / {lo} tenants",
                    _f(m[f"wggw_{hi}_over_{lo}"], "x", 2),
                    _f(m[f"naive_{hi}_over_{lo}"], "x", 2),
                    "target >= 0.90 for wggw",
                )
            )
    b = r.get("bulk")
    if b:
        for row in b["sizes"]:
            rows.append(
                (
                    f"import wg-quick of {row['peers']} peers",
                    _f(row["import_s"]),
                    "-",
                    "one transaction",
                )
            )
            rows.append(
                (f"peer add 'T/p{{1..{row['peers']}}}'", _f(row["add_s"]), "-", "keys generated")
            )
        g = b["gateway"]
        for verb in ("apply", "plan", "status"):
            rows.append(
                (
                    f"{verb} at {g['peers']} peers ({g['tenants']} tenants)",
                    _f(g[f"{verb}_s"]),
                    "-",
                    "cold" if verb == "apply" else "",
                )
            )
    from .onepeer import rows as one_peer_agent_rows

    rows += one_peer_agent_rows(r)
    rows += agent_rows(r.get("agent"))
    from .fleet_agent import rows as fleet_rows

    rows += fleet_rows(r.get("fleet") or {})
    mem = r.get("memory", {})
    peak = max(
        [c["wggw_maxrss_mb"]["max"] for c in r.get("cold_apply", [])]
        + [o["wggw"]["maxrss_mb"] for o in ops.values()]
        + [o["maxrss_mb"] for o in ops.values()]
        + [o["rotation"]["maxrss_mb"] for o in ops.values() if "rotation" in o]
        + ([row["maxrss_mb"] for row in b["sizes"]] + [b["gateway"]["maxrss_mb"]] if b else [])
        + [0]
    )
    rows.append(("peak RSS of a wggw process", f"{peak:.0f} MB", "-", "target < 200 MB"))
    for k, v in mem.items():
        rows.append(
            (
                f"wireguard-go RSS ({k})",
                str({a: round(b) for a, b in v.items()}) if isinstance(v, dict) else f"{v:.0f} MB",
                "",
                "",
            )
        )
    return rows


def print_table(results: dict) -> None:
    rows = [("measurement", "wggw", "naive", "ratio / note")] + _rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    left = results.get("cleanup", {}).get("leftovers")
    print(f"cleanup: {'nothing left behind' if not left else left}")
