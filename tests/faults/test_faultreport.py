"""The fault figures reach RELIABILITY.md as the run measured them (no root needed): every row is
in the table with its numbers, a failed check reads NO, and only the text between the markers
is replaced."""

from __future__ import annotations

from pathlib import Path

import faultreport
import pytest
from faulttrial import Row


def _row(**kw) -> dict:
    base = dict(
        fault="nft_flush_ruleset",
        variant="alone",
        tried=120,
        tried_during=80,
        plan_rc=2,
        detected=True,
        apply_rc=0,
        repaired=True,
        time_to_repair=0.734,
        replan_rc=0,
    )
    return Row(**{**base, **kw}).as_dict()


def test_table_shows_each_trial_and_failures_as_no() -> None:
    ok = _row()
    leaked = _row(
        variant="during_apply",
        leaked=7,
        leaked_packets=31,
        plan_rc=0,
        detected=False,
        repaired=False,
        time_to_repair=None,
    )
    rule = Row(
        "foreign_ip_rule",
        "alone",
        detected=True,
        check_rc=4,
        repaired=True,
        foreign_rule_kept=True,
        replan_rc=0,
    ).as_dict()
    text = faultreport.markdown([leaked, rule, ok])
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    assert (
        "| nft_flush_ruleset | alone | 120 (80) | 0 (0) | 0 | yes (plan exit 2) | yes | 0.73 |"
        in lines
    )
    assert "| 7 (0) | 31 | NO (plan exit 0) | NO (apply exit 0, re-plan exit 0) | - |" in lines[-1]
    assert "yes (status --check exit 4)" in text and "kept by apply" in text


def test_only_the_marked_table_is_replaced(tmp_path: Path) -> None:
    doc = tmp_path / "RELIABILITY.md"
    doc.write_text(f"# head\n{faultreport.BEGIN}\nold\n{faultreport.END}\n## crash\nkept\n")
    faultreport._update_markdown(doc, "new table\n")
    want = f"# head\n{faultreport.BEGIN}\nnew table\n{faultreport.END}\n## crash\nkept\n"
    assert doc.read_text() == want
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        faultreport._update_markdown(doc, "x\n")
