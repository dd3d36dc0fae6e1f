"""Count conntrack entries by reply-direction destination: the source ports each egress IP uses.

A tenant's flows leave SNATed to its egress IP, so in the reply direction of their conntrack
entries that IP is the destination. One ctnetlink dump (NETLINK_NETFILTER, IPCTNL_MSG_CT_GET
with NLM_F_DUMP, both families) of the caller's network namespace, read with a minimal parser
that looks at one nested attribute per entry and builds no objects: 20-25x faster than
pyroute2's `Conntrack.dump()` (which took 18.7 s for 50,000 entries on a busy host;
benchmarks/conntrack_count.py). The cost is linear in the table size and capped at `limit`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterable

from wggw.core.errors import WggwError

NETLINK_NETFILTER = 12
_CT_GET_DUMP = (1 << 8) | 1  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_CTA_TUPLE_REPLY, _CTA_TUPLE_IP = 2, 1
_CTA_IP_V4_DST, _CTA_IP_V6_DST = 2, 4
_NLA_TYPE_MASK = 0x3FFF
_HDR = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")

# wggw's SNAT names no port range (`snat ip to ip saddr map @snat_v4`), so the kernel keeps a
# flow's source port and, on a clash, picks from 1024-65535 for ports >= 1024
# (nf_nat_l4proto_unique_tuple): 64,512 ports per egress IP, protocol and destination.
# net.ipv4.ip_local_port_range governs the host's own sockets, not NAT.
SNAT_PORTS = 65535 - 1024 + 1


class ConntrackError(WggwError):
    """The conntrack table could not be read."""


def count_by_reply_dst(
    addresses: Iterable[str], limit: int = 1 << 20
) -> tuple[dict[str, int], bool]:
    """Entries whose reply-direction destination is each address; and whether `limit` cut
    the dump short (the counts are then lower bounds)."""
    wanted = {ipaddress.ip_address(a).packed: str(ipaddress.ip_address(a)) for a in addresses}
    counts = dict.fromkeys(wanted.values(), 0)
    if not wanted:
        return counts, False
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.settimeout(10.0)  # a scrape must not hang on a kernel that never answers
            sock.bind((0, 0))
            request = _HDR.pack(20, _CT_GET_DUMP, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
            sock.send(request + struct.pack("=BBH", socket.AF_UNSPEC, 0, 0))
            complete = _read_dump(sock, wanted, counts, limit)
    except OSError as e:
        raise ConntrackError(f"conntrack dump: {e.strerror or e}") from e
    return counts, not complete


def _read_dump(sock: socket.socket, wanted: dict, counts: dict, limit: int) -> bool:
    """Count into `counts`; True if the dump ended before `limit` entries were read."""
    seen = 0
    while seen < limit:
        data = sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _, _, _ = _HDR.unpack_from(data, off)
            if length < 16:
                raise OSError(0, "malformed netlink message")
            if mtype == _NLMSG_DONE:
                return True
            if mtype == _NLMSG_ERROR:
                errno = -struct.unpack_from("=i", data, off + 16)[0]
                if errno:
                    raise OSError(errno, os.strerror(errno))
                return True
            dst = _reply_dst(data, off + 20, off + length)  # past nlmsghdr and nfgenmsg
            if dst in wanted:
                counts[wanted[dst]] += 1
            seen += 1
            off += (length + 3) & ~3
    return False


def _reply_dst(data: bytes, off: int, end: int) -> bytes | None:
    """The packed destination address of the reply tuple, or None."""
    for kind in (_CTA_TUPLE_REPLY, _CTA_TUPLE_IP):
        nested = _find(data, off, end, kind)
        if nested is None:
            return None
        off, end = nested
    for kind in (_CTA_IP_V4_DST, _CTA_IP_V6_DST):
        found = _find(data, off, end, kind)
        if found is not None:
            return data[found[0] : found[1]]
    return None


def _find(data: bytes, off: int, end: int, kind: int) -> tuple[int, int] | None:
    while off + 4 <= end:
        length, atype = _NLA.unpack_from(data, off)
        if length < 4:
            return None
        if atype & _NLA_TYPE_MASK == kind:
            return off + 4, off + length
        off += (length + 3) & ~3
    return None
