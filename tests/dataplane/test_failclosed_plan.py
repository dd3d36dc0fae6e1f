"""The fail-closed layers and full-content observation, in the pure core: what is desired,
how drift of each kind is planned, and how nft's JSON is read (issue 9, defects 1-2)."""

from dataclasses import replace

from test_plan_converges import IFACE, tenant

from wggw.backends.fake import FakeSystem
from wggw.core import naming, nftcanon, ruletree, tcguard
from wggw.core.desired import RouteSpec, compile_state
from wggw.core.model import State
from wggw.core.plan import (
    AddAddress,
    AddRoute,
    AddRule,
    AddTc,
    DelAddress,
    DelRoute,
    DelRule,
    DelTc,
    ReplaceNft,
    plan,
)
from wggw.core.tcguard import EGRESS, INGRESS, TcSpec


def _state(n: int = 2) -> State:
    return State((IFACE,), tuple(tenant(i) for i in range(n)), ())


def _converged(n: int = 2):
    fake = FakeSystem()
    want = compile_state(_state(n), fake.facts())
    fake.apply(plan(want, fake.observe()))
    assert plan(want, fake.observe()) == []
    return fake, want


def test_iif_guard_rules_sit_below_the_trie_one_per_interface():
    rules = ruletree.rules_for(4, [naming.TABLE_MIN, naming.TABLE_MIN + 7], ["wgb", "wga"])
    iif = [r for r in rules if r.iif]
    assert [(r.pref, r.iif, r.action) for r in iif] == [
        (ruletree.PREF_IIF, "wga", "unreachable"),
        (ruletree.PREF_IIF + 1, "wgb", "unreachable"),
    ]
    assert all(r.pref > ruletree.PREF_END for r in iif)
    assert "iif wga unreachable" in iif[0].describe()


def test_tc_guard_marks_each_interface_and_guards_each_uplink():
    want = compile_state(_state(), FakeSystem().facts())
    assert want.tc == {TcSpec.wanted("wgt0", INGRESS), TcSpec.wanted("eth0", EGRESS)}
    assert compile_state(State((IFACE,), (), ()), FakeSystem().facts()).tc == frozenset()


def test_programs_test_and_set_only_wggws_bit():
    assert naming.MARK_FROM_WG & naming.MARK_MASK == 0  # the trie never sees it
    for hook in (INGRESS, EGRESS):
        prog = tcguard.PROGRAMS[hook]
        assert len(prog) % 8 == 0 and prog[-8] == 0x95  # whole instructions, ends in exit
        assert naming.MARK_FROM_WG.to_bytes(4, "little") in prog
        assert tcguard.tag(hook) in tcguard.known_tags(hook)


def test_nft_marks_carry_the_bit_and_only_the_guard_clears_it():
    want = compile_state(_state(), FakeSystem().facts())
    marks = dict(want.nft.elements)["mark_v4"]
    assert all(int(m.split(" : ")[1], 16) & naming.MARK_FROM_WG for m in marks)
    guard = [line for line in want.nft.text.splitlines() if "@egress_ok_v4" in line]
    assert len(guard) == 1 and "meta mark set meta mark & 0xdfffffff return" in guard[0]


def test_tc_drift_is_planned_and_removed_by_down():
    fake, want = _converged()
    swapped = TcSpec("eth0", EGRESS, "other", "00", ("kind u32",))
    tcs = (fake.state.tc - {TcSpec.wanted("eth0", EGRESS)}) | {swapped}
    fake.state = replace(fake.state, tc=tcs)
    assert plan(want, fake.observe()) == [AddTc(TcSpec.wanted("eth0", EGRESS))]
    fake.state = replace(fake.state, tc=fake.state.tc | {TcSpec("eth9", EGRESS, "x", "y")})
    assert DelTc(TcSpec("eth9", EGRESS, "x", "y")) in plan(want, fake.observe())


def test_an_element_edited_in_place_is_drift():
    fake, want = _converged()
    elements = dict(fake.state.nft.elements)
    snat = elements["snat_v4"]
    elements["snat_v4"] = (snat[0].split(" : ")[0] + " : 203.0.113.99",) + snat[1:]  # same count
    fake.state = replace(fake.state, nft=replace(fake.state.nft, elements=tuple(elements.items())))
    assert plan(want, fake.observe()) == [ReplaceNft(want.nft)]


def test_a_body_not_vouched_for_is_drift():
    fake, want = _converged()
    fake.state = replace(fake.state, nft=replace(fake.state.nft, vouched=False))
    assert plan(want, fake.observe()) == [ReplaceNft(want.nft)]


def test_a_rule_with_an_extra_selector_is_deleted_before_wggws_is_added():
    fake, want = _converged()
    ours = next(r for r in want.rules if r.pref == ruletree.PREF_UNREACHABLE and r.family == 4)
    theirs = replace(ours, extra=(("src_len", "16"),))
    fake.state = replace(fake.state, rules=(fake.state.rules - {ours}) | {theirs})
    assert plan(want, fake.observe()) == [DelRule(theirs), AddRule(ours)]


def test_a_route_changed_in_place_is_replaced_and_a_stray_one_deleted():
    fake, want = _converged()
    ours = next(r for r in want.routes if r.dst == "default" and r.family == 4 and r.table == 60000)
    mtu = replace(ours, extra=(("attr8", "08000200000500"),))
    stray = RouteSpec(4, 60000, "198.51.100.0/24", "", extra=(("type", "6"),))
    fake.state = replace(fake.state, routes=(fake.state.routes - {ours}) | {mtu, stray})
    assert plan(want, fake.observe()) == [AddRoute(ours, replace=True), DelRoute(stray)]


def test_an_address_given_a_lifetime_is_replaced_not_deleted():
    fake, want = _converged()
    ours = next(a for a in want.addresses if a.ifname == "wgt0" and "." in a.cidr)
    finite = replace(ours, extra=(("lifetime", "finite"),))
    fake.state = replace(fake.state, addresses=(fake.state.addresses - {ours}) | {finite})
    changes = plan(want, fake.observe())
    assert changes == [AddAddress(ours, replace=True)]
    assert not any(isinstance(c, DelAddress) for c in changes)
    assert "ip address replace" in str(changes[0])


def test_a_device_fwmark_is_drift():
    fake, want = _converged()
    dev = fake.state.wg["wgt0"]
    fake.state = replace(fake.state, wg={"wgt0": replace(dev, fwmark=0x1234)})
    assert [c.describe().split(" private-key")[0] for c in plan(want, fake.observe())] == [
        "wg set wgt0 listen-port 51820 fwmark 0"
    ]


NFT_JSON = [
    {"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "inet", "name": "wggw", "handle": 2}},
    {"set": {"name": "wg_ifaces", "type": "ifname", "handle": 5, "elem": ["wgt0"]}},
    {
        "map": {
            "name": "mark_v6",
            "type": "ipv6_addr",
            "map": "mark",
            "handle": 7,
            "flags": ["interval"],
            "elem": [[{"prefix": {"addr": "fd00::", "len": 64}}, 805306368]],
        }
    },
    {
        "set": {
            "name": "egress_ok_v4",
            "type": ["ipv4_addr", "ipv4_addr"],
            "handle": 10,
            "elem": [{"concat": [{"prefix": {"addr": "10.0.0.0", "len": 24}}, "203.0.113.0"]}],
        }
    },
    {
        "rule": {
            "chain": "tenant_mark",
            "handle": 16,
            "comment": "wggw abc",
            "expr": [{"counter": {"packets": 7, "bytes": 700}}, {"return": None}],
        }
    },
]


def test_nft_json_is_read_in_the_spelling_wggw_renders():
    parsed = nftcanon.parse(NFT_JSON)
    assert parsed.digest == "abc"
    assert dict(parsed.elements) == {
        "wg_ifaces": ("wgt0",),
        "mark_v6": ("fd00::/64 : 0x30000000",),
        "egress_ok_v4": ("10.0.0.0/24 . 203.0.113.0",),
    }
    # handles and counter values change without anyone changing the table: not in the body
    moved = [dict(o) for o in NFT_JSON]
    moved[5] = {
        "rule": {
            **NFT_JSON[5]["rule"],
            "handle": 99,
            "expr": [{"counter": {"packets": 1, "bytes": 1}}, {"return": None}],
        }
    }
    assert nftcanon.parse(moved).body == parsed.body
    edited = [dict(o) for o in NFT_JSON]
    edited[5] = {"rule": {**NFT_JSON[5]["rule"], "expr": [{"accept": None}]}}
    assert nftcanon.parse(edited).body != parsed.body


def test_rendered_elements_match_what_nft_lists():
    """The renderer's spelling is the one nftcanon reads back (v6 compressed, marks in hex)."""
    want = compile_state(State((IFACE,), (tenant(0),), ()), FakeSystem().facts())
    elements = dict(want.nft.elements)
    assert elements["mark_v6"] == ("fd00::/64 : 0x30000000",)
    assert elements["egress_ok_v4"] == ("10.0.0.0/24 . 203.0.113.0",)
