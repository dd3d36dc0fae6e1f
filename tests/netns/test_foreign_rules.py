"""`status` asks the kernel how each tenant's packets are routed (issue 9, defect 3): a foreign
ip rule above wggw's window that takes them is reported, named, and makes `status --check`
exit 4; wggw leaves the rule alone; a foreign rule that does not match tenant packets is
not reported."""

from __future__ import annotations

import json

from gwhelper import TENANTS, up


def _paths(lab, code: int = 0) -> list[dict]:
    res = lab.wggw("status", "--json", "--check", ok_codes=(code,))
    return json.loads(res.stdout)["paths"]


def test_a_foreign_rule_above_the_window_is_named_and_check_fails(lab):
    gw = up(lab)
    ok = _paths(lab)
    assert len(ok) == 4 and all(e["ok"] for e in ok), ok
    acme4 = next(e for e in ok if e["tenant"] == "acme" and e["family"] == 4)
    assert (acme4["table"], acme4["dev"], acme4["src"]) == (60000, lab.uplink_dev, "203.0.113.10")

    # Rules that do not match tenant packets: not reported.
    lab.gw.ip("-4", "rule", "add", "pref", "90", "iif", "lo", "lookup", "main")
    lab.gw.ip("-4", "rule", "add", "pref", "91", "from", "192.168.0.0/16", "lookup", "main")
    assert all(e["ok"] for e in _paths(lab))

    lab.gw.ip("-4", "rule", "add", "pref", "100", "lookup", "main")
    lab.gw.ip(
        "-6", "rule", "add", "pref", "110", "fwmark", "0x10000000/0x10000000", "lookup", "main"
    )
    entries = _paths(lab, code=4)
    assert {(e["tenant"], e["family"]) for e in entries if not e["ok"]} == {
        (t, v) for t in TENANTS for v in (4, 6)
    }
    by = {(e["tenant"], e["family"]): e for e in entries}
    assert by["acme", 4]["rule"] == "100: from all lookup main" and by["acme", 4]["table"] == 254
    assert by["globex", 6]["rule"] == "110: from all fwmark 0x10000000/0x10000000 lookup main"
    assert by["globex", 6]["src"] != "2001:db8:ffff::20"

    text = lab.wggw("status", "--check", ok_codes=(4,)).stdout
    assert "Paths: 4 of 4 wrong:" in text
    # 203.0.113.200 is on the uplink's subnet: main's connected route, with the host's source.
    assert (
        "acme IPv4: table main dev uplink0 src 203.0.113.1, expected table 60000 via "
        "203.0.113.254 dev uplink0 src 203.0.113.10; "
        "taken by ip rule 100: from all lookup main"
    ) in text
    # wggw does not touch what it does not own: plan sees nothing, the rules stay.
    lab.wggw("plan", "--detailed-exitcode")
    assert "100:\tfrom all lookup main" in lab.gw.ip("-4", "rule", "show").stdout

    lab.gw.ip("-4", "rule", "del", "pref", "100")
    lab.gw.ip("-6", "rule", "del", "pref", "110")
    assert all(e["ok"] for e in _paths(lab))
    text = lab.wggw("status").stdout
    assert "every tenant's packets take its own table and egress (4 checked)" in text
    assert gw.seen("acme", 4) == "203.0.113.10"
    lab.wggw("down")


def test_a_tenant_without_its_table_is_reported_without_a_foreign_rule(lab):
    up(lab)
    lab.gw.ip("-4", "route", "flush", "table", "60000")
    entries = _paths(lab, code=4)
    bad = [e for e in entries if not e["ok"]]
    assert [(e["tenant"], e["family"]) for e in bad] == [("acme", 4)]
    assert bad[0]["error"] and bad[0]["rule"] is None  # wggw's own fail-closed rule: unreachable
    lab.wggw("down")
