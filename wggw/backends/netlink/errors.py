"""What our own netlink code (nlbatch, nldump) shares about sockets and errors: the bounded
wait for the kernel's answer, and the kernel's extended ack (its one-line reason, e.g.
"Backward goto not supported.") read out of an NLMSG_ERROR message.

Every failure leaves as a BackendError naming the object it concerns: a raw OSError or a
timeout never reaches the caller without it.
"""

from __future__ import annotations

import os
import socket
import struct

from wggw.core.errors import BackendError

SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSGERR_ATTR_MSG = 1
# The kernel answers rtnetlink requests while they are sent and dumps page by page: seconds
# without a byte mean something is wrong; wait this long, then fail naming the object.
RECV_TIMEOUT = 10.0


class NetlinkRequestError(BackendError):
    """The kernel refused a request: `errno` is its code, `reason` its extended-ack text."""

    def __init__(self, what: str, code: int, reason: str = ""):
        self.errno, self.reason = code, reason
        extra = f": {reason}" if reason else ""
        super().__init__(f"{what}: [Errno {code}] {os.strerror(code)}{extra}")


def configure(sock: socket.socket) -> None:
    """Bound every receive and ask for the kernel's reasons (Linux >= 4.12; older kernels
    refuse the option and simply send no text)."""
    sock.settimeout(RECV_TIMEOUT)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    except OSError:
        pass


# Room for any one datagram: the kernel's dump messages stop at 32 KiB, acks are a few bytes.
# Not more: recv allocates its whole buffer on every call, and a 1 MiB one cost ~15 us per
# call instead of ~1 us (a cold apply of 1,000 tenants reads ~6,000 acks).
RECV_SIZE = 1 << 16


def recv(sock: socket.socket, what: str, size: int = RECV_SIZE) -> bytes:
    """One datagram from the kernel, or a BackendError naming `what`."""
    try:
        return sock.recv(size)
    except TimeoutError:
        limit = sock.gettimeout()
        raise BackendError(f"{what}: no answer from the kernel within {limit} s") from None
    except OSError as e:
        raise BackendError(f"{what}: netlink receive failed: {e}") from e


def parse_error(data: bytes, offset: int) -> tuple[int, str]:
    """(errno, extended-ack text) of the NLMSG_ERROR message at `offset`; errno 0 is an ack.

    Layout: nlmsghdr, int error, the request's nlmsghdr (only that when NLM_F_CAPPED, else
    the whole request), then with NLM_F_ACK_TLVS the NLMSGERR_ATTR_* attributes."""
    length, _kind, flags = struct.unpack_from("IHH", data, offset)
    end = min(offset + length, len(data))
    code = -struct.unpack_from("i", data, offset + 16)[0]
    if not flags & NLM_F_ACK_TLVS or offset + 36 > end:
        return code, ""
    inner = 16 if flags & NLM_F_CAPPED else struct.unpack_from("I", data, offset + 20)[0]
    return code, _message(data, offset + 20 + ((inner + 3) & ~3), end) or ""


def parse_done(data: bytes, offset: int) -> tuple[int, str]:
    """(errno, extended-ack text) of the NLMSG_DONE message at `offset`. A dump that fails
    once it has started (e.g. a filter the kernel refuses, a table that does not exist) ends
    with a DONE carrying the negative errno, its attributes right after it: 0 is success."""
    length, _kind, flags = struct.unpack_from("IHH", data, offset)
    end = min(offset + length, len(data))
    if offset + 20 > end:
        return 0, ""
    code = -struct.unpack_from("i", data, offset + 16)[0]
    if not code or not flags & NLM_F_ACK_TLVS:
        return code, ""
    return code, _message(data, offset + 20, end) or ""


def _message(data: bytes, start: int, end: int) -> str | None:
    while start + 4 <= end:
        alen, atype = struct.unpack_from("HH", data, start)
        if alen < 4:
            return None
        if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
            raw = data[start + 4 : min(start + alen, end)]
            return raw.split(b"\0", 1)[0].decode(errors="replace")
        start += (alen + 3) & ~3
    return None
