"""The path check's pure part (issue 9, defect 3): the probes, right vs wrong answers, and
which foreign rule is named, following the kernel's rule-match semantics."""

from __future__ import annotations

import ipaddress as ip

from wggw.backends.fake import FakeSystem
from wggw.core import keys, naming, paths
from wggw.core.desired import RouteSpec
from wggw.core.model import Interface, State, Tenant
from wggw.core.paths import Answer, ForeignRule
from wggw.ops import converge as reconcile
from wggw.ops import paths as ops_paths

IFACE = Interface("wgp0", 51820, "192.0.2.1:51820", keys.generate_private(), "")
ACME = Tenant(
    "acme",
    "wgp0",
    (ip.ip_network("10.10.0.0/24"), ip.ip_network("fd00:a::/64")),
    (ip.ip_address("203.0.113.10"),),
    naming.TABLE_MIN,
)  # no IPv6 egress
STATE = State((IFACE,), (ACME,), ())
MAIN = ForeignRule(100, "lookup", 254, text="100: from all lookup main")


def probes():
    fake = FakeSystem()
    return reconcile.converge(STATE, fake).desired, fake


def test_probes_carry_what_identifies_a_tenant_packet():
    desired, _ = probes()
    v4, v6 = paths.probes(STATE, desired)
    assert (v4.iif, v4.mark, v4.src, v4.family) == ("wgp0", 0x10000000, "10.10.0.2", 4)
    assert v4.expect == RouteSpec(4, 60000, "default", "eth0", "192.0.2.254", "203.0.113.10")
    assert v6.src == "fd00:a::2" and v6.expect is None  # no IPv6 egress: must not be routed
    assert v4.describe() == (
        "ip route get fibmatch 203.0.113.200 from 10.10.0.2 iif wgp0 mark 0x10000000"
    )


def test_right_and_wrong_answers():
    desired, _ = probes()
    v4, v6 = paths.probes(STATE, desired)
    assert paths.right(v4, Answer(60000, "eth0", "203.0.113.10", "192.0.2.254"))
    assert not paths.right(v4, Answer(254, "eth0", None, "192.0.2.254"))  # main
    assert not paths.right(v4, Answer(60000, "eth1", "203.0.113.10"))  # other device
    assert not paths.right(v4, Answer(60000, "eth0", "192.0.2.2"))  # other source
    assert not paths.right(v4, Answer(error="ENETUNREACH"))
    assert paths.right(v6, Answer(error="ENETUNREACH")) and not paths.right(v6, Answer(254, "eth0"))


def test_the_rule_named_is_the_first_matching_one_that_explains_the_answer():
    desired, _ = probes()
    v4 = paths.probes(STATE, desired)[0]
    got = Answer(254, "eth0", None, "192.0.2.254")
    rules = [
        ForeignRule(0, "lookup", 255, text="0: from all lookup local"),  # does not explain
        ForeignRule(50, "lookup", 254, iif="lo", text="50: iif lo"),  # iif differs
        ForeignRule(60, "lookup", 254, src="192.168.0.0/16", text="60"),  # source differs
        ForeignRule(61, "lookup", 254, mark=0x1, mask=0xFF, text="61"),  # mark differs
        ForeignRule(62, "lookup", 254, ipproto=6, text="62"),  # a lookup has no proto
        ForeignRule(63, "lookup", 254, oif="eth0", text="63"),  # forwarded: no oif
        ForeignRule(64, "lookup", 254, src="10.10.0.0/24", invert=True, text="64"),
        ForeignRule(70, "lookup", 254, mark=0x10000000, mask=0x10000000, text="70: fwmark"),
        MAIN,
        ForeignRule(10000, "lookup", 254, text="in the window: wggw's"),
    ]
    assert paths.culprit(v4, got, rules).text == "70: fwmark"
    assert paths.culprit(v4, got, rules[:6] + [MAIN]).text == MAIN.text
    prohibit = ForeignRule(80, "prohibit", text="80")
    assert paths.culprit(v4, Answer(error="EACCES"), [MAIN, prohibit]) == prohibit
    assert paths.culprit(v4, got, rules[:6]) is None


def test_status_paths_through_the_fake():
    desired, fake = probes()
    entries = ops_paths.check(STATE, desired, fake)
    assert [(e["family"], e["ok"]) for e in entries] == [(4, True), (6, True)]
    fake.foreign = [MAIN]
    fake.main_routes = {4: [RouteSpec(4, 254, "default", "eth0", "192.0.2.254")]}
    entries = ops_paths.check(STATE, desired, fake)
    assert ops_paths.wrong(entries) == [entries[0]]
    assert entries[0]["rule"] == MAIN.text
    assert entries[0]["got"] == "table main via 192.0.2.254 dev eth0"
    assert entries[0]["expected"] == "table 60000 via 192.0.2.254 dev eth0 src 203.0.113.10"
