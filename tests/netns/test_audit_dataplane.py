"""`apply` and `down` change the host, not the store: each is recorded in the audit chain when
it changed something, and only then (real lab gateway, real wireguard-go and nft)."""

from __future__ import annotations

import json

from gwhelper import up


def _kinds(lab) -> list[str]:
    return [r["kind"] for r in json.loads(lab.wggw("audit", "--json").stdout)]


def test_apply_and_down_are_recorded_when_they_change_the_host(lab):
    up(lab)
    recs = json.loads(lab.wggw("audit", "--json").stdout)
    applies = [r for r in recs if r["kind"] == "apply"]
    assert applies and applies[-1]["details"]["changes"] > 0
    assert applies[-1]["command"] == "wggw apply" and applies[-1]["subject"] == "host"
    count = len(recs)
    lab.wggw("apply")  # nothing to do: nothing to record
    assert len(_kinds(lab)) == count
    lab.wggw("down")
    kinds = _kinds(lab)
    assert kinds[count:] == ["down"]
    lab.wggw("down")  # nothing of wggw's left: no record
    assert len(_kinds(lab)) == count + 1
    assert lab.wggw("audit", "verify").stdout.startswith(f"audit chain intact: {count + 1} ")
