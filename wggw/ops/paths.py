"""The path check of `status` (issue 9, defect 3): probe each tenant's route through the
system (kernel, or the fake) and judge the answers (core/paths.py)."""

from __future__ import annotations

from wggw.core import paths


def check(state, desired, system) -> list[dict]:
    """One entry per tenant and family: its packets' route, right or wrong, and the foreign
    rule that takes them when one does."""
    probes = paths.probes(state, desired)
    if not probes:
        return []
    answers = system.route_answers(probes)
    rules = {v: system.foreign_rules(v) for v in {p.family for p in probes}}
    return [paths.judge(p, got, rules[p.family]) for p, got in zip(probes, answers, strict=True)]


def wrong(entries: list[dict]) -> list[dict]:
    return [e for e in entries if not e["ok"]]
