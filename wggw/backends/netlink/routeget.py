"""Ask the kernel how a tenant packet is routed (RTM_GETROUTE with RTM_F_FIB_MATCH, as
`ip route get fibmatch DST from SRC iif IF mark M`), and dump the ip rules wggw does not
own with every selector a route lookup matches on. Read-only; our own netlink codec, as
in dump.py. The judging is pure (core/paths.py)."""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
from dataclasses import replace

from wggw.backends.netlink import dump as nldump
from wggw.core import naming
from wggw.core.paths import TABLE_NAMES, Answer, ForeignRule, Probe

RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTA_DST, RTA_SRC, RTA_IIF, RTA_MARK = 1, 2, 3, 16
RTM_F_LOOKUP_TABLE = 0x1000  # without it the kernel reports every answer as table main
RTM_F_FIB_MATCH = 0x2000
RTN_NAMES = {2: "local", 3: "broadcast", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
AF = {4: socket.AF_INET, 6: socket.AF_INET6}
TIMEOUT = 5.0

_U32 = nldump._U32
RULE_ATTRS = {
    **nldump.RULE_ATTRS,
    1: ("FRA_DST", None),
    2: ("FRA_SRC", None),
    3: ("FRA_IIFNAME", nldump._STR),
    17: ("FRA_OIFNAME", nldump._STR),
    19: ("FRA_L3MDEV", nldump._U8),
    20: ("FRA_UID_RANGE", lambda b: struct.unpack_from("II", b)),
    22: ("FRA_IP_PROTO", nldump._U8),
    23: ("FRA_SPORT_RANGE", bytes),
    24: ("FRA_DPORT_RANGE", bytes),
}
ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
FIB_RULE_INVERT = 0x2


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _request(p: Probe, iif: int) -> bytes:
    fam = AF[p.family]
    bits = 32 if p.family == 4 else 128
    flags = RTM_F_FIB_MATCH | RTM_F_LOOKUP_TABLE
    body = struct.pack("BBBBBBBBI", fam, bits, bits, 0, 0, 0, 0, 0, flags)
    body += _attr(RTA_DST, socket.inet_pton(fam, p.dst))
    body += _attr(RTA_SRC, socket.inet_pton(fam, p.src))
    body += _attr(RTA_IIF, struct.pack("I", iif)) + _attr(RTA_MARK, struct.pack("I", p.mark))
    return struct.pack("IHHII", 16 + len(body), RTM_GETROUTE, nldump.F_REQUEST, 1, 0) + body


def route_answers(probes: list[Probe]) -> list[Answer]:
    """The kernel's answer to each probe, over one netlink socket."""
    links = dict(nldump.iter_names())
    names = {name: index for index, name in links.items()}
    kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC
    with socket.socket(socket.AF_NETLINK, kind, nldump.NETLINK_ROUTE) as s:
        s.settimeout(TIMEOUT)
        s.bind((0, 0))
        return [_route_get(s, p, names, links) for p in probes]


def _route_get(s: socket.socket, p: Probe, names: dict[str, int], devs: dict[int, str]) -> Answer:
    """The route the kernel picks for the probe, or the error it answers with."""
    iif = names.get(p.iif)
    if iif is None:
        return Answer(error=f"interface {p.iif} missing")
    s.send(_request(p, iif))
    data = s.recv(1 << 16)
    off = 0
    while off + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("IHHII", data, off)
        if kind == nldump.NLMSG_ERROR:
            code = -struct.unpack_from("i", data, off + 16)[0]
            if code:
                name = errno.errorcode.get(code, str(code))
                return Answer(error=f"{name} ({os.strerror(code)})")
        elif kind == RTM_NEWROUTE:
            msg = nldump._route(data, off + 16, off + length)
            table = msg.get("RTA_TABLE", msg["table"])
            if msg["type"] in RTN_NAMES and msg["type"] != 2:
                return Answer(table=table, error=f"{RTN_NAMES[msg['type']]} route")
            return Answer(
                table,
                devs.get(msg.get("RTA_OIF", 0)),
                msg.get("RTA_PREFSRC"),
                msg.get("RTA_GATEWAY"),
            )
        off += (length + 3) & ~3
    return Answer(error="no answer")


def foreign_rules(family: int) -> list[ForeignRule]:
    """Every ip rule of the family above wggw's window (a lower priority number)."""
    header = struct.pack("BBBBBBBBI", AF[family], 0, 0, 0, 0, 0, 0, 0, 0)
    out = []
    rule = functools.partial(nldump._rule, attrs=RULE_ATTRS)  # every selector, decoded
    for r in nldump._dump(nldump.RTM_GETRULE, header, rule):
        pref = r.get("FRA_PRIORITY", 0)
        if pref >= naming.RULE_PREF_MIN:
            continue
        out.append(_foreign(r, pref))
    return out


def _foreign(r: dict, pref: int) -> ForeignRule:
    src = f"{r['FRA_SRC']}/{r['src_len']}" if "FRA_SRC" in r else None
    dst = f"{r['FRA_DST']}/{r['dst_len']}" if "FRA_DST" in r else None
    mark = r.get("FRA_FWMARK", 0)
    mask = r.get("FRA_FWMASK", 0xFFFFFFFF if mark else 0)
    rule = ForeignRule(
        pref=pref,
        action=ACTIONS.get(r["action"], f"action {r['action']}"),
        table=r.get("FRA_TABLE", r["table"]),
        iif=r.get("FRA_IIFNAME"),
        oif=r.get("FRA_OIFNAME"),
        mark=mark,
        mask=mask,
        src=src,
        dst=dst,
        tos=r["tos"],
        ipproto=r.get("FRA_IP_PROTO", 0),
        ports="FRA_SPORT_RANGE" in r or "FRA_DPORT_RANGE" in r,
        uid_range=r.get("FRA_UID_RANGE"),
        invert=bool(r["flags"] & FIB_RULE_INVERT),
        l3mdev=bool(r.get("FRA_L3MDEV")),
    )
    return _with_text(rule, r.get("FRA_GOTO", 0))


def _with_text(rule: ForeignRule, goto: int) -> ForeignRule:
    """The rule as `ip rule` shows it ("100: from all lookup main")."""
    parts = [f"{rule.pref}:", "not" if rule.invert else "", f"from {rule.src or 'all'}"]
    parts += [f"to {rule.dst}"] if rule.dst else []
    parts += [f"fwmark {rule.mark:#x}/{rule.mask:#x}"] if rule.mask else []
    parts += [f"iif {rule.iif}"] if rule.iif else []
    parts += [f"oif {rule.oif}"] if rule.oif else []
    parts += [f"ipproto {rule.ipproto}"] if rule.ipproto else []
    parts += ["uidrange {}-{}".format(*rule.uid_range)] if rule.uid_range else []
    if rule.action == "lookup":
        parts.append(f"lookup {TABLE_NAMES.get(rule.table, rule.table)}")
    else:
        parts.append(f"goto {goto}" if rule.action == "goto" else rule.action)
    return replace(rule, text=" ".join(p for p in parts if p))
