"""Kernel change notifications: one raw netlink socket subscribed to multicast groups, and a
small decoder that turns each message into an `Event` (what changed, and the facts the agent
needs to decide whether the change touches wggw: link index and name, route table, rule
priority, nftables table).

Two subscriptions: rtnetlink (links, v4/v6 addresses, routes, rules) and nfnetlink's nftables
group (every table, chain, rule, set and element change, and the end of each transaction).
Both see only the network namespace the process runs in. A socket overrun (ENOBUFS: events
were lost) is reported as an `Event("overrun")`, on which the reader must re-read everything.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass

from wggw.backends.netlink import errors as nlerr

NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
# rtnetlink multicast groups (linux/rtnetlink.h, enum rtnetlink_groups)
RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE = 1, 5, 7, 8
RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE = 9, 11, 19
RTNL_GROUPS = (
    RTNLGRP_LINK,
    RTNLGRP_IPV4_IFADDR,
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV4_RULE,
    RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_ROUTE,
    RTNLGRP_IPV6_RULE,
)
NFNLGRP_NFTABLES = 7
NFNL_SUBSYS_NFTABLES = 10

_RTM = {
    16: "link",
    17: "link",
    20: "address",
    21: "address",
    24: "route",
    25: "route",
    32: "rule",
    33: "rule",
}
_NFT = {
    0: "table",
    2: "table",
    3: "chain",
    5: "chain",
    6: "rule",
    8: "rule",
    9: "set",
    11: "set",
    12: "element",
    14: "element",
    15: "generation",
    16: "object",
    18: "object",
    19: "flowtable",
    21: "flowtable",
}
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_IFNAME, RTA_TABLE, FRA_TABLE, FRA_PRIORITY = 3, 15, 15, 6
IFA_ADDRESS, IFA_LOCAL = 1, 2
NFTA_GEN_PROC_PID = 2
_HDR = struct.Struct("=IHHII")


@dataclass(frozen=True)
class Event:
    """One kernel notification. `kind`: link, address, route, rule (rtnetlink); table, chain,
    rule, set, element, generation, ... (nftables, with `nft=True`); or overrun."""

    kind: str
    deleted: bool = False
    nft: bool = False
    ifindex: int | None = None
    ifname: str | None = None
    table: int | None = None  # route/rule table id
    priority: int | None = None  # rule priority
    nft_table: str | None = None  # nftables table name
    pid: int | None = None  # nftables generation: the committing process
    address: str | None = None  # an address event's address (keepalived's are not drift)


class EventSocket:
    """A non-blocking netlink socket bound to `groups` of `protocol`; use `fileno()` with
    select and `read()` to drain it. Close it (or use `with`)."""

    def __init__(self, protocol: int, groups: tuple[int, ...], rcvbuf: int = 8 << 20) -> None:
        self.protocol = protocol
        kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC
        self.sock = socket.socket(socket.AF_NETLINK, kind, protocol)
        try:
            try:  # SO_RCVBUFFORCE (root) goes past rmem_max; fall back to the plain option
                self.sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.bind((0, 0))
            for group in groups:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 4096) -> list[Event]:
        """Every event waiting now (at most `limit` datagrams), decoded."""
        events: list[Event] = []
        for _ in range(limit):
            try:
                data = self.sock.recv(nlerr.RECV_SIZE)  # one small event per datagram
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    events.append(Event("overrun"))
                    continue
                raise
            events.extend(decode(data, self.protocol))
        return events

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> EventSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rtnl_events() -> EventSocket:
    return EventSocket(NETLINK_ROUTE, RTNL_GROUPS)


def nft_events() -> EventSocket:
    return EventSocket(NETLINK_NETFILTER, (NFNLGRP_NFTABLES,))


def decode(data: bytes, protocol: int) -> list[Event]:
    """The messages of one datagram (several may be packed in it)."""
    out: list[Event] = []
    offset = 0
    while offset + _HDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size:
            break
        body = data[offset + _HDR.size : offset + length]
        event = _decode_rtnl(mtype, body) if protocol == NETLINK_ROUTE else _decode_nft(mtype, body)
        if event is not None:
            out.append(event)
        offset += (length + 3) & ~3
    return out


def _attrs(body: bytes, start: int) -> dict[int, bytes]:
    """Top-level netlink attributes from `start` (type -> payload; nested bits masked off)."""
    attrs: dict[int, bytes] = {}
    offset = start
    while offset + 4 <= len(body):
        alen, atype = struct.unpack_from("=HH", body, offset)
        if alen < 4:
            break
        attrs.setdefault(atype & 0x3FFF, body[offset + 4 : offset + alen])
        offset += (alen + 3) & ~3
    return attrs


def _u32(raw: bytes | None, big: bool = False) -> int | None:
    if raw is None or len(raw) < 4:
        return None
    return struct.unpack(">I" if big else "=I", raw[:4])[0]


def _decode_rtnl(mtype: int, body: bytes) -> Event | None:
    kind = _RTM.get(mtype)
    if kind is None:
        return None
    deleted = mtype % 4 == 1  # RTM_DEL* = RTM_NEW* + 1 in each group of four
    if kind == "link" and len(body) >= 16:
        ifindex = struct.unpack_from("=i", body, 4)[0]
        name = _attrs(body, 16).get(IFLA_IFNAME, b"").split(b"\0")[0].decode(errors="replace")
        return Event(kind, deleted, ifindex=ifindex, ifname=name or None)
    if kind == "address" and len(body) >= 8:
        attrs = _attrs(body, 8)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        family = socket.AF_INET if body[0] == socket.AF_INET else socket.AF_INET6
        text = socket.inet_ntop(family, raw) if raw and len(raw) in (4, 16) else None
        return Event(kind, deleted, ifindex=struct.unpack_from("=I", body, 4)[0], address=text)
    if kind in ("route", "rule") and len(body) >= 12:
        attrs = _attrs(body, 12)
        table = _u32(attrs.get(RTA_TABLE)) or body[4]  # rtmsg/fib_rule_hdr: table at byte 4
        prio = _u32(attrs.get(FRA_PRIORITY)) if kind == "rule" else None
        return Event(kind, deleted, table=table, priority=prio)
    return Event(kind, deleted)


def _decode_nft(mtype: int, body: bytes) -> Event | None:
    if mtype >> 8 != NFNL_SUBSYS_NFTABLES:
        return None
    msg = mtype & 0xFF
    kind = _NFT.get(msg)
    if kind is None or len(body) < 4:
        return None
    attrs = _attrs(body, 4)  # after struct nfgenmsg
    if kind == "generation":
        return Event(kind, nft=True, pid=_u32(attrs.get(NFTA_GEN_PROC_PID), big=True))
    # NFTA_{TABLE_NAME,CHAIN_TABLE,RULE_TABLE,SET_TABLE,SET_ELEM_LIST_TABLE,...} are all type 1
    name = attrs.get(1, b"").split(b"\0")[0].decode(errors="replace") or None
    deleted = msg in (2, 5, 8, 11, 14, 18, 21)
    return Event(kind, deleted, nft=True, nft_table=name)
