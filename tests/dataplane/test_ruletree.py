"""The ip rule trie: every tenant reaches its own table in a constant number of rule
evaluations, unmarked packets skip the window, unknown marks fail closed, and adding a
tenant changes only the rules on its own path."""

import random

import pytest

from wggw.core import naming
from wggw.core import ruletree as rt


def tables(n, seed=1):
    return random.Random(seed).sample(range(naming.TABLE_MIN, naming.TABLE_MAX + 1), n)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000])
def test_each_tenant_reaches_its_table_in_constant_steps(n):
    ts = tables(n)
    rules = rt.rules_for(4, ts)
    steps = set()
    for t in ts:
        got, count = rt.walk(rules, naming.tenant_mark(t))
        assert got == t
        steps.add(count)
    assert steps == {rt.INDEX_BITS + 2}  # skip rule + one per trie level + leaf


def test_rules_stay_inside_wggw_window_and_are_unique():
    rules = rt.rules_for(6, tables(500))
    prefs = [r.pref for r in rules]
    assert len(prefs) == len(set(prefs))
    assert all(naming.owns_rule_pref(p) for p in prefs)
    assert all(r.goto > r.pref for r in rules if r.action == "goto")


def test_unmarked_packets_skip_the_window():
    rules = rt.rules_for(4, tables(300))
    assert rt.walk(rules, 0) == (None, 2)
    assert rt.walk(rules, 0xCA6C) == (None, 2)  # wg-quick's fwmark is not ours


def test_unknown_tenant_mark_is_unreachable_never_another_table():
    ts = tables(50)
    rules = rt.rules_for(4, ts)
    missing = next(t for t in range(naming.TABLE_MIN, naming.TABLE_MAX) if t not in ts)
    assert rt.walk(rules, naming.tenant_mark(missing))[0] is None


def test_adding_a_tenant_changes_only_its_path():
    ts = tables(400)
    before = set(rt.rules_for(4, ts))
    new = next(t for t in range(naming.TABLE_MIN, naming.TABLE_MAX) if t not in ts)
    after = set(rt.rules_for(4, ts + [new]))
    assert len(after - before) + len(before - after) <= 2 * (rt.INDEX_BITS + 1)


def test_no_tenants_no_rules():
    assert rt.rules_for(4, []) == []
