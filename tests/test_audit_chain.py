"""The audit hash chain (core/audit.py), pure: an intact chain verifies; an edited field, a
deleted, inserted or reordered record, or a cut-off tail is named as the first bad record;
--since and --tenant select; a Secret is refused."""

from __future__ import annotations

import copy

import pytest

from wggw.core import audit
from wggw.core.errors import StoreError, ValidationError
from wggw.core.keys import Secret

PUB = "Q4lfSdIga72Kdfcr0rVanB1rajFnDnYDRLG4YaYJyHY="
T0 = 1_790_000_000.0


def _chain(n: int = 5) -> tuple[list[dict], audit.Head]:
    head, rows = None, []
    for i in range(n):
        subject = "acme" if i == 0 else (f"acme/p{i}" if i % 2 else f"other/p{i}")
        rec = audit.chain(
            head,
            at=T0 + 60 * i,
            kind="tenant.add" if i == 0 else "peer.add",
            subject=subject,
            uid=0,
            user="alice",
            command="wggw peer add",
            details={"public_key": PUB, "addresses": ("10.10.0.2/32",), "n": i},
        )
        rows.append({**rec.body(), "hash": rec.hash})
        head = audit.Head(rec.seq, rec.hash)
    assert head is not None
    return rows, head


def test_intact_chain_verifies_and_records_fingerprints_not_keys() -> None:
    rows, head = _chain()
    assert audit.verify(rows, head) is None
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5] and rows[0]["prev"] == audit.GENESIS
    rec = audit.record_of(rows[1])
    assert rec.keys == ("2848105b8311c8d4",)  # keys.fingerprint(PUB)
    assert rec.details["addresses"] == ["10.10.0.2/32"]  # as read back from JSON
    assert audit.verify([], None) is None


@pytest.mark.parametrize(
    "field,value",
    [
        ("subject", "acme/mallory"),
        ("user", "bob"),
        ("uid", 1000),
        ("at", T0 + 1),
        ("details", {"public_key": PUB, "addresses": ["10.10.0.9/32"], "n": 2}),
        ("keys", []),
        ("command", "wggw peer remove"),
    ],
)
def test_an_edited_field_is_named(field: str, value) -> None:
    rows, head = _chain()
    rows[2][field] = value
    broken = audit.verify(rows, head)
    assert broken is not None and broken.seq == 3 and "edited" in broken.line()
    assert broken.line().startswith("audit chain broken at record 3:")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    rows, head = _chain()
    rows[2]["subject"] = "acme/mallory"
    rows[2]["hash"] = audit.digest({k: v for k, v in rows[2].items() if k != "hash"})
    broken = audit.verify(rows, head)
    assert broken is not None and broken.seq == 4 and "does not follow" in broken.problem


def test_a_deleted_record_is_named() -> None:
    rows, head = _chain()
    del rows[1]
    broken = audit.verify(rows, head)
    assert broken is not None and broken.seq == 2 and "found record 3" in broken.problem
    rows, head = _chain()
    del rows[0]
    assert audit.verify(rows, head).seq == 1  # type: ignore[union-attr]


def test_reordered_records_are_named() -> None:
    rows, head = _chain()
    rows[1], rows[2] = rows[2], rows[1]
    broken = audit.verify(rows, head)
    assert broken is not None and broken.seq == 2 and "reordered" in broken.problem
    # contents swapped between two positions (the seq stays the row's): each hash breaks
    rows, head = _chain()
    moved = copy.deepcopy(rows)
    for i, j in ((1, 2), (2, 1)):
        moved[i] = {**rows[j], "seq": rows[i]["seq"]}
    assert audit.verify(moved, head).seq == 2  # type: ignore[union-attr]


def test_an_inserted_record_is_named() -> None:
    rows, head = _chain()
    fake = audit.chain(
        audit.Head(2, rows[1]["hash"]),
        at=T0,
        kind="peer.remove",
        subject="acme/p1",
        uid=0,
        user="x",
        command=None,
        details={},
    )
    rows.insert(2, {**fake.body(), "hash": fake.hash})
    broken = audit.verify(rows, head)
    # the forged record links well; the real record 3 then stands where record 4 should
    assert broken is not None and broken.seq == 4 and "found record 3" in broken.problem


def test_a_cut_off_tail_is_caught_by_the_kept_head_only() -> None:
    rows, head = _chain()
    broken = audit.verify(rows[:3], head)
    assert broken is not None and broken.seq == 4 and "tail was cut off" in broken.problem
    assert audit.verify(rows[:3], audit.head_of([audit.record_of(r) for r in rows[:3]])) is None
    assert audit.verify([], head).seq == 1  # type: ignore[union-attr]
    assert audit.verify(rows, None) is not None  # rows but no head: the head was removed


def test_a_record_appended_after_a_cut_continues_from_the_kept_head() -> None:
    rows, head = _chain()
    rec = audit.chain(
        head, at=T0, kind="k", subject="s", uid=0, user=None, command=None, details={}
    )
    rows = [*rows[:3], {**rec.body(), "hash": rec.hash}]
    broken = audit.verify(rows, audit.Head(rec.seq, rec.hash))
    assert broken is not None and broken.seq == 4  # records 4 and 5 are gone


def test_unreadable_row_is_named() -> None:
    rows, head = _chain()
    rows[3]["details"] = "{not json"
    assert audit.verify(rows, head).seq == 4  # type: ignore[union-attr]


def test_canonical_encoding_is_stable() -> None:
    assert audit.canonical({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    rows, _ = _chain(1)
    body = {k: v for k, v in rows[0].items() if k != "hash"}
    assert audit.digest(dict(reversed(list(body.items())))) == rows[0]["hash"]


def test_a_secret_is_refused() -> None:
    with pytest.raises(StoreError, match="secret"):
        audit.chain(
            None,
            at=T0,
            kind="peer.add",
            subject="a/b",
            uid=0,
            user=None,
            command=None,
            details={"psk": Secret._trusted(PUB)},
        )


def test_since_and_tenant_select() -> None:
    rows, _ = _chain()
    recs = [audit.record_of(r) for r in rows]
    now = T0 + 4 * 60
    assert [r.seq for r in audit.select(recs, audit.parse_since("2m", now), None)] == [3, 4, 5]
    assert [r.seq for r in audit.select(recs, None, "acme")] == [1, 2, 4]
    assert [r.seq for r in audit.select(recs, None, "other")] == [3, 5]
    assert audit.select(recs, None, "acm") == []
    iso = audit.parse_since("2026-09-21T14:13:20Z", now)
    assert iso == audit.parse_since("2026-09-21T14:13:20", now) == 1_790_000_000.0
    assert audit.parse_since("2026-09-21T16:13:20+02:00", now) == 1_790_000_000.0
    assert audit.parse_since("1d12h", now) == now - 36 * 3600
    for bad in ("yesterday", "1y", "", "-1h"):
        with pytest.raises(ValidationError, match="since"):
            audit.parse_since(bad, now)


def test_anchor_kept_elsewhere() -> None:
    rows, head = _chain()
    anchor = audit.Head(3, rows[2]["hash"])
    assert audit.verify(rows, head, anchor) is None
    assert audit.verify(rows, head, audit.Head(3, "0" * 64)).seq == 3  # type: ignore[union-attr]
    cut = rows[:2]
    short = audit.head_of([audit.record_of(r) for r in cut])
    broken = audit.verify(cut, short, anchor)  # tail and head cut together: the anchor sees it
    assert broken is not None and broken.seq == 3 and "missing" in broken.problem
    assert audit.parse_head(f" 3:{'A' * 64} ") == audit.Head(3, "a" * 64)
    assert audit.parse_head(f"3 {'a' * 64}") == audit.Head(3, "a" * 64)
    for bad in ("3:abc", "x:" + "a" * 64, "", "3"):
        with pytest.raises(ValidationError, match="expect"):
            audit.parse_head(bad)
