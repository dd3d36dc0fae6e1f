"""The fault suite's figures: every trial's Row, printed as a table at the end of the pytest run,
and (when asked) written as JSON and into RELIABILITY.md, so the published figures are the
output of a run, never typed by hand.

    WGGW_FAULTS_JSON=PATH      write every row (all fields) as JSON to PATH
    WGGW_RELIABILITY_MD=PATH   replace the table between the fault markers in PATH (RELIABILITY.md)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import pytest

BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"
_ROWS: list[dict] = []
_STARTED = time.monotonic()


def record(row: dict) -> None:
    _ROWS.append(row)


def _cell_detected(r: dict) -> str:
    if r["error"]:
        return f"ERROR: {r['error'][:80]}"
    if r["fault"] == "foreign_ip_rule":
        return f"{'yes' if r['detected'] else 'NO'} (status --check exit {r['check_rc']})"
    return f"{'yes' if r['detected'] else 'NO'} (plan exit {r['plan_rc']})"


def _cell_repaired(r: dict) -> str:
    if r["fault"] == "foreign_ip_rule":
        kept = "kept by apply" if r["foreign_rule_kept"] else "REMOVED by apply"
        return f"{'yes' if r['repaired'] else 'NO'} (operator removes it; {kept})"
    return (
        "yes"
        if r["repaired"] and r["replan_rc"] == 0
        else f"NO (apply exit {r['apply_rc']}, re-plan exit {r['replan_rc']})"
    )


def _cell_time(r: dict) -> str:
    if r["fault"] == "foreign_ip_rule":
        return "n/a"
    return "-" if r["time_to_repair"] is None else f"{r['time_to_repair']:.2f}"


def markdown(rows: list[dict]) -> str:
    head = (
        "| fault | while | tried (during fault) | leaked requests (after repair) | "
        "leaked packets | detected | repaired | time to repair (s) |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in sorted(rows, key=lambda r: (r["fault"], r["variant"])):
        lines.append(
            f"| {r['fault']} | {r['variant']} | {r['tried']} ({r['tried_during']}) | "
            f"{r['leaked']} ({r['leaked_after_repair']}) | {r['leaked_packets']} | "
            f"{_cell_detected(r)} | {_cell_repaired(r)} | {_cell_time(r)} |"
        )
    return head + "\n".join(lines) + "\n"


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    """A git command in this checkout, or None where there is no git (the kernel tier's VM)."""
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
        )
    except OSError:
        return None


def _provenance(rows: list[dict]) -> str:
    head = _git("rev-parse", "--short", "HEAD")
    commit = (head.stdout.strip() if head else "") or "unknown"
    # The code under test and the suite: edits there make the figures not those of `commit`.
    dirty = _git("diff", "--quiet", "HEAD", "--", "wggw", "tests")
    commit += " (with uncommitted changes)" if dirty and dirty.returncode == 1 else ""
    total = sum(r["tried"] for r in rows)
    leaked = sum(r["leaked"] for r in rows)
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit {commit}, "
        f"kernel {platform.release()}, backend {os.environ.get('WGGW_BACKEND', 'auto')}: "
        f"{len(rows)} trials, {total} requests tried, {leaked} leaked, "
        f"suite {time.monotonic() - _STARTED:.0f} s.\n"
    )


def _update_markdown(path: Path, text: str) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"{path}: markers {BEGIN} / {END} not found")
    before, rest = doc.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{BEGIN}\n{text}{END}{after}")


class SummaryPlugin:
    """Registered by the fault tests' module fixture: prints and writes the figures once."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not _ROWS:
            return
        rows = list(_ROWS)
        text = _provenance(rows) + "\n" + markdown(rows)
        terminalreporter.write_sep("=", "wggw fault suite figures")
        terminalreporter.write(text)
        if os.environ.get("WGGW_FAULTS_JSON"):
            Path(os.environ["WGGW_FAULTS_JSON"]).write_text(json.dumps(rows, indent=1) + "\n")
        if os.environ.get("WGGW_RELIABILITY_MD"):
            _update_markdown(Path(os.environ["WGGW_RELIABILITY_MD"]), text)


def register(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("wggw-fault-figures"):
        config.pluginmanager.register(SummaryPlugin(), "wggw-fault-figures")
