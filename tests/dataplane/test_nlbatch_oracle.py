"""Byte-level tests of our rtnetlink encoder (wggw/backends/nlbatch.py) with pyroute2 as the
oracle: every request we encode is parsed by pyroute2's own message classes, and each field
and attribute must read back as the object it stands for (and nothing else may be in it).
No root and no socket: only bytes."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from wggw.backends.netlink import batch as nlbatch
from wggw.core import naming

NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400


def parsed(cls, req: nlbatch.Request, seq: int = 7):
    """The request framed as `send` frames it, decoded by pyroute2."""
    data = (
        struct.pack(
            "IHHII", 16 + len(req.body), req.type, req.flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0
        )
        + req.body
    )
    msg = cls(data)
    msg.decode()
    assert msg["header"]["length"] == len(data) and msg["header"]["sequence_number"] == seq
    return msg


def attrs(msg) -> dict:
    names = [name for name, _ in msg["attrs"]]
    assert len(names) == len(set(names)), names  # no attribute twice
    return dict(msg["attrs"])


# ---- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd,cidr,proto,nodad",
    [
        ("add", "10.1.0.1/24", 0, False),
        ("add", "203.0.113.7/32", naming.ADDR_PROTO, False),
        ("add", "2001:db8::7/128", naming.ADDR_PROTO, True),
        ("add", "fd00:1::1/64", 0, True),
        ("del", "203.0.113.7/32", naming.ADDR_PROTO, False),
        ("del", "2001:db8::7/128", 0, True),
    ],
)
def test_address(cmd, cidr, proto, nodad):
    req = nlbatch.address(cmd, 42, cidr, proto, nodad=nodad)
    msg = parsed(ifaddrmsg, req)
    ip, plen = cidr.split("/")
    assert msg["header"]["type"] == (20 if cmd == "add" else 21)  # RTM_NEWADDR / RTM_DELADDR
    create = NLM_F_CREATE | NLM_F_EXCL if cmd == "add" else 0
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK | create
    assert msg["family"] == (socket.AF_INET6 if ":" in ip else socket.AF_INET)
    assert (msg["prefixlen"], msg["index"], msg["scope"]) == (int(plen), 42, 0)
    assert msg["flags"] == (0x02 if nodad else 0)  # IFA_F_NODAD
    want = {"IFA_LOCAL": ip, "IFA_ADDRESS": ip}
    if proto:
        want["IFA_PROTO"] = proto
    assert attrs(msg) == want
    assert req.ok == ({errno.EEXIST} if cmd == "add" else nlbatch.GONE)


# ---- links -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mtu,up,alias,want",
    [
        (1420, True, None, {"IFLA_MTU": 1420}),
        (None, False, naming.LINK_ALIAS, {"IFLA_IFALIAS": naming.LINK_ALIAS}),
        (9000, False, None, {"IFLA_MTU": 9000}),
    ],
)
def test_link(mtu, up, alias, want):
    req = nlbatch.link(7, "link wg0", mtu, up, alias)
    msg = parsed(ifinfmsg, req)
    assert msg["header"]["type"] == 16  # RTM_NEWLINK on an existing index: `ip link set`
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK  # no create, no replace
    assert (msg["family"], msg["index"]) == (0, 7)
    # up: the flag and its mask; otherwise the mask is 0 and the kernel leaves the flags alone
    assert (msg["flags"], msg["change"]) == ((1, 1) if up else (0, 0))
    assert attrs(msg) == want
    assert req.ok == frozenset() and req.what == "link wg0"


# ---- routes ----------------------------------------------------------------------------------

ROUTES = [
    # cmd, family, table, dst, oif, gateway, prefsrc
    ("add", 4, 60001, "10.1.0.0/24", 5, None, None),
    ("add", 4, 60001, "default", 2, "192.0.2.254", "203.0.113.1"),
    ("replace", 4, 67999, "default", 2, "192.0.2.254", "203.0.113.101"),
    ("add", 6, 60002, "fd00:2::/64", 5, None, None),
    ("add", 6, 60002, "default", 2, "2001:db8::fe", "2001:db8::2"),
    ("add", 4, 200, "198.51.100.0/24", 3, None, "203.0.113.9"),  # a table below 256
    ("del", 4, 60001, "default", 0, None, None),
    ("del", 6, 60002, "fd00:2::/64", 0, None, None),
]


@pytest.mark.parametrize("cmd,family,table,dst,oif,gateway,prefsrc", ROUTES)
def test_route(cmd, family, table, dst, oif, gateway, prefsrc):
    req = nlbatch.route(cmd, family, table, dst, oif, gateway, prefsrc)
    msg = parsed(rtmsg, req)
    flags = {"add": NLM_F_CREATE | NLM_F_EXCL, "replace": NLM_F_CREATE | NLM_F_REPLACE, "del": 0}[
        cmd
    ]
    assert msg["header"]["type"] == (25 if cmd == "del" else 24)  # RTM_DELROUTE / RTM_NEWROUTE
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK | flags
    assert msg["family"] == (socket.AF_INET if family == 4 else socket.AF_INET6)
    plen = 0 if dst == "default" else int(dst.split("/")[1])
    assert (msg["dst_len"], msg["src_len"], msg["tos"], msg["table"]) == (plen, 0, 0, 0)
    want: dict = {"RTA_TABLE": table}  # always the 32-bit attribute, whatever the table
    if plen:
        want["RTA_DST"] = dst.split("/")[0]
    if cmd == "del":  # wildcards: any protocol, scope and type
        assert (msg["proto"], msg["scope"], msg["type"]) == (0, 255, 0)
    else:
        assert (msg["proto"], msg["type"]) == (4, 1)  # RTPROT_STATIC, RTN_UNICAST
        assert msg["scope"] == (0 if gateway else 253)  # universe via a gateway, else link
        want["RTA_OIF"] = oif
        want.update({k: v for k, v in (("RTA_GATEWAY", gateway), ("RTA_PREFSRC", prefsrc)) if v})
    assert attrs(msg) == want


# ---- rules -----------------------------------------------------------------------------------

MARK, MASK = naming.MARK_FLAG | 0x5, naming.MARK_MASK
RULES = [
    # family, pref, action, fwmark, fwmask, table, goto
    (4, 10000, "goto", 0, naming.MARK_FLAG, 0, 26385),
    (4, 10013, "goto", naming.MARK_FLAG | 0x1, naming.MARK_FLAG | 0x1FFF, 0, 10015),
    (4, 10015, "lookup", MARK, MASK, 60005, 0),  # table > 255: FRA_TABLE only
    (6, 10015, "lookup", MARK, MASK, 67999, 0),
    (4, 20000, "lookup", 0, 0, 200, 0),  # table < 256, no mark: "from all"
    (6, 20001, "lookup", 0, 0, 300, 0),  # just above the 8-bit field
    (6, 10001, "nop", 0, 0, 0, 0),
    (4, 26384, "unreachable", naming.MARK_FLAG, naming.MARK_FLAG, 0, 0),
    (6, 26384, "unreachable", naming.MARK_FLAG, naming.MARK_FLAG, 0, 0),
    (6, 10000, "goto", 0, naming.MARK_FLAG, 0, 26385),  # fwmark 0 with a mask: "not marked"
]
ACTIONS = {"lookup": 1, "goto": 2, "nop": 3, "unreachable": 7}  # FR_ACT_*


@pytest.mark.parametrize("cmd", ["add", "del"])
@pytest.mark.parametrize("family,pref,action,fwmark,fwmask,table,goto", RULES)
def test_rule(cmd, family, pref, action, fwmark, fwmask, table, goto):
    req = nlbatch.rule(cmd, family, pref, action, fwmark, fwmask, table, goto)
    msg = parsed(fibmsg, req)
    assert msg["header"]["type"] == (32 if cmd == "add" else 33)  # RTM_NEWRULE / RTM_DELRULE
    create = NLM_F_CREATE | NLM_F_EXCL if cmd == "add" else 0
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK | create
    assert msg["family"] == (socket.AF_INET if family == 4 else socket.AF_INET6)
    assert msg["action"] == ACTIONS[action]
    assert (msg["dst_len"], msg["src_len"], msg["tos"], msg["flags"]) == (0, 0, 0, 0)
    assert msg["table"] == (table if 0 < table < 256 else 0)  # the 8-bit field cannot hold more
    want: dict = {"FRA_PRIORITY": pref}
    if fwmask:
        want.update(FRA_FWMARK=fwmark, FRA_FWMASK=fwmask)
    if action == "lookup":
        want["FRA_TABLE"] = table
    if action == "goto":
        want["FRA_GOTO"] = goto
    assert attrs(msg) == want
    assert req.what == f"rule pref {pref}"


def test_requests_of_a_batch_frame_back_to_back():
    """`send` concatenates messages: pyroute2 must find each one at its aligned offset."""
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    reqs = [
        nlbatch.address("add", 3, "2001:db8::1/128", naming.ADDR_PROTO, nodad=True),
        nlbatch.route("add", 4, 60001, "default", 2, "192.0.2.254", "203.0.113.1"),
        nlbatch.rule("add", 6, 10015, "lookup", MARK, MASK, 60005),
    ]
    data = b"".join(
        struct.pack("IHHII", 16 + len(r.body), r.type, r.flags | 1 | 4, i + 1, 0) + r.body
        for i, r in enumerate(reqs)
    )
    assert all(len(r.body) % 4 == 0 for r in reqs)  # so each next header is aligned
    msgs = list(MarshalRtnl().parse(data))
    assert [m["header"]["type"] for m in msgs] == [20, 24, 32]
    assert [m["header"]["sequence_number"] for m in msgs] == [1, 2, 3]
    assert msgs[2].get_attr("FRA_TABLE") == 60005 and msgs[0].get_attr("IFA_PROTO") == 0x77


# ---- the fast address parser -------------------------------------------------------------

PREFIXES = [
    "10.1.0.1/24",  # host bits: an address may have them, a route destination may not
    "10.1.0.0/24",
    "0.0.0.0/0",
    "203.0.113.7/32",
    "203.0.113.7",
    "2001:db8::7/128",
    "2001:db8:1::/48",
    "2001:db8:1::1/48",
    "::/0",
    "::ffff:192.0.2.1/128",
    "10.1.0.0/33",
    "10.1.0.0/+24",
    "10.1.0.0/",
    "010.1.0.0/24",
    "10.1.0/24",
    "10.1.0.0/255.255.255.0",
    "2001:db8::/129",
    "not an address",
]


@pytest.mark.parametrize("cidr", PREFIXES)
@pytest.mark.parametrize("strict", [True, False])
def test_prefix_parser_agrees_with_ipaddress(cidr, strict):
    """inet_pton's fast path gives what ipaddress gives, and refuses what it refuses."""
    import ipaddress

    try:
        if strict:
            net = ipaddress.ip_network(cidr)
            want = (net.version, net.prefixlen, net.network_address.packed)
        else:
            iface = ipaddress.ip_interface(cidr)
            want = (iface.version, iface.network.prefixlen, iface.ip.packed)
    except ValueError:
        with pytest.raises(ValueError):
            nlbatch._prefix(cidr, strict)
        return
    assert nlbatch._prefix(cidr, strict) == want
