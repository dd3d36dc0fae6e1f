"""Lay out wggw's ip rules as a binary trie over the tenant mark bits (pure).

Why a trie: the kernel walks ip rules as a list for every forwarded packet (about
15-20 ns per rule here), so one rule per tenant makes per-packet cost grow with the
number of tenants. nftables marks each tenant packet with FLAG | index (one map
lookup); these rules then reach the tenant's table by testing one mark bit per trie
level. Every tenant packet walks exactly INDEX_BITS + 2 rules whether there is one
tenant or 8,000, and unmarked packets (replies, the host's own traffic) skip the
whole window with one rule.

Priorities are fixed by a node's position in the *complete* trie (pre-order), so
adding or removing a tenant changes only the rules on its own path (at most
INDEX_BITS + 1), never the rest of the window.

Layout inside naming's window:
  PREF_SKIP          not marked            -> goto PREF_END
  PREF_TREE + k      trie node k (pre-order): "bit set -> goto right child", else nop;
                     leaves: "fwmark FLAG|index lookup <tenant table>"
  PREF_UNREACHABLE   marked but no route   -> unreachable (fail closed: never main)
  PREF_END           nop (the target of the skip rule)
  PREF_IIF + k       iif <k-th wggw WireGuard interface> -> unreachable

The iif rules are the routing layer's own guard, which needs no mark: a packet that came in
on a wggw interface and found no tenant table (nftables gone, so it is unmarked and skipped
the trie; or its table lost its routes) never reaches `main`. One rule per interface, not per
tenant: packets that skip the window walk 2 + (number of wggw interfaces) rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wggw.core import naming

INDEX_BITS = naming.MARK_INDEX_MASK.bit_length()  # 13
TRIE_SIZE = (1 << (INDEX_BITS + 1)) - 1  # nodes of the complete trie
PREF_SKIP = naming.RULE_PREF_MIN
PREF_TREE = PREF_SKIP + 1
PREF_UNREACHABLE = PREF_TREE + TRIE_SIZE
PREF_END = PREF_UNREACHABLE + 1
PREF_IIF = PREF_END + 1
MAX_IFACES = naming.RULE_PREF_MAX - PREF_IIF + 1
assert MAX_IFACES > 0


@dataclass(frozen=True, order=True)
class RuleSpec:
    """One ip rule. `action` is lookup|goto|nop|unreachable."""

    family: int  # 4 or 6
    pref: int
    action: str
    fwmark: int = 0
    fwmask: int = 0
    table: int = 0  # for lookup
    goto: int = 0  # for goto
    iif: str = ""
    # Anything else observed on the rule (another selector, `not`, a protocol...), as
    # (name, value) pairs; wggw's own rules have none. The raw netlink attributes travel
    # with it so that a delete names exactly this rule.
    extra: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        fam = "-6 " if self.family == 6 else ""
        sel = f"fwmark {self.fwmark:#x}/{self.fwmask:#x}" if self.fwmask else "from all"
        sel += f" iif {self.iif}" if self.iif else ""
        sel += "".join(f" {k} {v}" for k, v in self.extra)
        act = {"lookup": f"lookup {self.table}", "goto": f"goto {self.goto}"}.get(
            self.action, self.action
        )
        return f"ip {fam}rule pref {self.pref} {sel} {act}"


def _subtree_size(depth: int) -> int:
    """Nodes in a complete subtree whose root is at `depth` (root depth 0)."""
    return (1 << (INDEX_BITS - depth + 1)) - 1


def _pref_of(depth: int, prefix: int) -> int:
    """Pre-order position of the node reached by the top `depth` bits `prefix`."""
    pos = 0
    for level in range(depth):
        bit = (prefix >> (depth - 1 - level)) & 1
        pos += 1 if bit == 0 else 1 + _subtree_size(level + 1)
    return PREF_TREE + pos


def _node_rule(family: int, depth: int, prefix: int, right_exists: bool) -> RuleSpec:
    pref = _pref_of(depth, prefix)
    if not right_exists:
        return RuleSpec(family, pref, "nop")
    shift = INDEX_BITS - depth - 1
    bit_mask = ((1 << (depth + 1)) - 1) << shift
    value = ((prefix << 1) | 1) << shift
    return RuleSpec(
        family,
        pref,
        "goto",
        naming.MARK_FLAG | value,
        naming.MARK_FLAG | bit_mask,
        goto=_pref_of(depth + 1, (prefix << 1) | 1),
    )


def rules_for(family: int, tables: Iterable[int], ifaces: Iterable[str] = ()) -> list[RuleSpec]:
    """All of wggw's rules of one family for tenants with these routing tables, behind
    these WireGuard interfaces."""
    indices = sorted({t - naming.TABLE_MIN for t in tables})
    if not indices:
        return []
    names = sorted(set(ifaces))
    if len(names) > MAX_IFACES:
        raise ValueError(f"{len(names)} interfaces: at most {MAX_IFACES} fit wggw's rule window")
    rules = [
        RuleSpec(family, PREF_SKIP, "goto", 0, naming.MARK_FLAG, goto=PREF_END),
        RuleSpec(family, PREF_UNREACHABLE, "unreachable", naming.MARK_FLAG, naming.MARK_FLAG),
        RuleSpec(family, PREF_END, "nop"),
    ]
    rules += [
        RuleSpec(family, PREF_IIF + k, "unreachable", iif=name) for k, name in enumerate(names)
    ]
    present: set[tuple[int, int]] = set()  # (depth, prefix) of every node on a path
    for idx in indices:
        for depth in range(INDEX_BITS + 1):
            present.add((depth, idx >> (INDEX_BITS - depth)))
    for depth, prefix in present:
        if depth == INDEX_BITS:
            rules.append(
                RuleSpec(
                    family,
                    _pref_of(depth, prefix),
                    "lookup",
                    naming.MARK_FLAG | prefix,
                    naming.MARK_MASK,
                    table=naming.TABLE_MIN + prefix,
                )
            )
        else:
            right = (depth + 1, (prefix << 1) | 1) in present
            rules.append(_node_rule(family, depth, prefix, right))
    return sorted(rules)


def walk(rules: list[RuleSpec], mark: int) -> tuple[int | None, int]:
    """Simulate the kernel's rule walk for a packet with `mark` (for tests):
    returns (table looked up or None, number of rules evaluated) until the first
    lookup, unreachable or the end of the window. Lookups are assumed to succeed."""
    by_pref = sorted(rules, key=lambda r: r.pref)
    i, steps = 0, 0
    while i < len(by_pref):
        rule = by_pref[i]
        steps += 1
        if rule.iif or (rule.fwmask and (mark & rule.fwmask) != rule.fwmark):
            i += 1
            continue
        if rule.action == "lookup":
            return rule.table, steps
        if rule.action == "unreachable":
            return None, steps
        if rule.action == "goto":
            i = next(j for j, r in enumerate(by_pref) if r.pref == rule.goto)
            continue
        i += 1
    return None, steps
