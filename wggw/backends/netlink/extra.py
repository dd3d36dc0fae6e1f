"""What observation sees on a rule, route or address beyond the fields wggw sets itself.

wggw compares owned objects whole: an ip rule that gained a selector or `not`, a route that
gained metrics, a type or another protocol, an address given a lifetime or a peer, is not
wggw's object any more. Each function turns a decoded dump message (nldump) into sorted
(name, value) pairs; wggw's own objects give none. Values the kernel reports for every
object (cache info, padding, defaults) and flags the kernel changes by itself (link down,
tentative, secondary) are left out, or a healthy host would always differ.
"""

from __future__ import annotations

import struct

# ip rules: FRA_PROTOCOL, FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_PREFIXLEN at their defaults,
# FRA_PAD.
RULE_DEFAULTS = {21: b"\0", 13: struct.pack("I", 0xFFFFFFFF), 14: struct.pack("I", 0xFFFFFFFF)}
RULE_SKIP = {18}
FIB_RULE_UNRESOLVED = 0x4  # a goto whose target is missing: the kernel's note, not a field
# routes: RTA_CACHEINFO, RTA_PAD; RTA_PREF = 0 (medium, IPv6 default)
ROUTE_SKIP = {12, 24}
ROUTE_DEFAULTS = {20: b"\0"}
RTN_UNICAST, RTPROT_STATIC = 1, 4
RTNH_F_PERVASIVE, RTNH_F_ONLINK = 0x2, 0x4
# addresses
IFA_F_DADFAILED, IFA_F_HOMEADDRESS, IFA_F_PERMANENT = 0x08, 0x10, 0x80
IFA_F_MANAGETEMPADDR, IFA_F_NOPREFIXROUTE, IFA_F_MCAUTOJOIN = 0x100, 0x200, 0x400
ADDR_FLAGS = (
    IFA_F_DADFAILED
    | IFA_F_HOMEADDRESS
    | IFA_F_MANAGETEMPADDR
    | IFA_F_NOPREFIXROUTE
    | IFA_F_MCAUTOJOIN
)


def _raw(items, skip: set[int], defaults: dict[int, bytes]) -> list[tuple[str, str]]:
    return [
        (f"attr{kind}", payload.hex())
        for kind, payload in items
        if kind not in skip and defaults.get(kind) != payload
    ]


def _header(msg: dict, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, str(msg[k])) for k in keys if msg.get(k)]


def rule_extra(msg: dict, action: str) -> tuple[tuple[str, str], ...]:
    out = _header(msg, ("dst_len", "src_len", "tos"))
    flags = msg["flags"] & ~FIB_RULE_UNRESOLVED
    if flags:
        out.append(("flags", hex(flags)))
    table = msg.get("FRA_TABLE", msg["table"])
    if action != "lookup" and table:
        out.append(("table", str(table)))
    return tuple(sorted(out + _raw(msg["raw"], RULE_SKIP, RULE_DEFAULTS)))


def route_extra(msg: dict) -> tuple[tuple[str, str], ...]:
    out = _header(msg, ("src_len", "tos"))
    if msg["type"] != RTN_UNICAST:
        out.append(("type", str(msg["type"])))
    if msg["proto"] != RTPROT_STATIC:
        out.append(("proto", str(msg["proto"])))
    flags = msg["flags"] & (RTNH_F_PERVASIVE | RTNH_F_ONLINK)
    if flags:
        out.append(("flags", hex(flags)))
    return tuple(sorted(out + _raw(msg["raw"], ROUTE_SKIP, ROUTE_DEFAULTS)))


def addr_extra(msg: dict, ifname: str) -> tuple[tuple[str, str], ...]:
    out = []
    if msg.get("IFA_ADDRESS") and msg.get("IFA_LOCAL") and msg["IFA_ADDRESS"] != msg["IFA_LOCAL"]:
        out.append(("peer", str(msg["IFA_ADDRESS"])))
    if msg.get("IFA_LABEL") and msg["IFA_LABEL"] != ifname:
        out.append(("label", msg["IFA_LABEL"]))
    if msg["scope"]:
        out.append(("scope", str(msg["scope"])))
    flags = msg.get("IFA_FLAGS", msg["flags"])
    if flags & ADDR_FLAGS:
        out.append(("flags", hex(flags & ADDR_FLAGS)))
    if not flags & IFA_F_PERMANENT:
        out.append(("lifetime", "finite"))
    return tuple(sorted(out))
