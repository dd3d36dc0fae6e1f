"""Our netlink code's failures (wggw/backends/nlerr.py, nlbatch, nldump): the kernel's
extended-ack text is read out of error messages (pyroute2's parser as the oracle), every
receive is bounded, and no OSError or timeout leaves without the object named.
No root: a silent socket stands in for a kernel that does not answer."""

from __future__ import annotations

import _socket
import errno
import os
import socket
import struct
import time

import pytest
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from wggw.backends.netlink import batch as nlbatch
from wggw.backends.netlink import dump as nldump
from wggw.backends.netlink import errors as nlerr
from wggw.core.errors import BackendError

REASON = "Backward goto not supported"


def tlv(kind: int, payload: bytes) -> bytes:
    return struct.pack("HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def error_message(code: int, request: bytes, capped: bool, reason: str | None) -> bytes:
    """An NLMSG_ERROR laid out as the kernel's netlink_ack() writes it: a capped ack echoes
    only the request's header (keeping its original length field), else the whole request."""
    payload = struct.pack("i", -code) + (request[:16] if capped else request)
    flags = 0x100 if capped else 0
    if reason is not None:
        payload += tlv(1, reason.encode() + b"\0") + tlv(2, struct.pack("I", 20))
        flags |= 0x200
    return struct.pack("IHHII", 16 + len(payload), 2, flags, 9, 0) + payload


def request_bytes() -> bytes:
    req = nlbatch.rule("add", 4, 100, "goto", goto=50)
    return struct.pack("IHHII", 16 + len(req.body), req.type, req.flags | 5, 9, 0) + req.body


@pytest.mark.parametrize("reason", [REASON, None, "x" * 200])
def test_extended_ack_text_as_pyroute2_reads_it(reason):
    data = error_message(errno.EINVAL, request_bytes(), capped=False, reason=reason)
    oracle = next(iter(MarshalRtnl().parse(data)))["header"]["error"]
    # (pyroute2 puts strerror where the kernel gave no text; we leave the text empty)
    assert (oracle.code, oracle.args[1]) == (errno.EINVAL, reason or os.strerror(errno.EINVAL))
    assert nlerr.parse_error(data, 0) == (errno.EINVAL, reason or "")


def test_extended_ack_text_of_a_capped_ack():
    """nlbatch asks for capped acks (NETLINK_CAP_ACK): the echoed header still says the
    request's full length, which must not be taken as the distance to the attributes."""
    request = request_bytes()
    assert struct.unpack_from("I", request)[0] > 16
    data = error_message(errno.EINVAL, request, capped=True, reason=REASON)
    assert nlerr.parse_error(data, 0) == (errno.EINVAL, REASON)
    ack = error_message(0, request, capped=True, reason=None)
    assert nlerr.parse_error(ack + data, 0) == (0, "")
    assert nlerr.parse_error(ack + data, len(ack)) == (errno.EINVAL, REASON)


def test_a_refused_request_in_a_batch_names_the_object_and_the_reason():
    req = nlbatch.rule("add", 4, 100, "goto", goto=50)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        a.settimeout(5)
        b.send(error_message(errno.EINVAL, request_bytes(), capped=True, reason=REASON))
        failures = nlbatch._acks(a, {9: req})
    assert nlbatch.describe(failures[0]) == f"rule pref 100: [Errno 22] Invalid argument: {REASON}"


class SilentKernel:
    """A netlink socket whose kernel never answers (a real datagram socket underneath, so
    a receive without a timeout would block the test run)."""

    made: list[SilentKernel] = []

    def __init__(self, *args):
        # _socket: the test replaces socket.socket, which socket.socketpair itself uses
        self.sock, self._peer = _socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.options: dict = {}
        SilentKernel.made.append(self)

    def settimeout(self, value):
        self.sock.settimeout(value)

    def gettimeout(self):
        return self.sock.gettimeout()

    def setsockopt(self, level, name, value):
        self.options[(level, name)] = value

    def bind(self, addr):
        pass

    def send(self, data):
        return len(data)

    def recv(self, size):
        assert self.sock.gettimeout() is not None, "an unbounded receive"
        return self.sock.recv(size)

    def close(self):
        self.sock.close()
        self._peer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def silent(monkeypatch):
    SilentKernel.made = []
    monkeypatch.setattr(nlerr, "RECV_TIMEOUT", 0.2)
    monkeypatch.setattr(socket, "socket", SilentKernel)
    return SilentKernel.made


def test_a_batch_without_acks_fails_in_bounded_time_naming_the_objects(silent):
    reqs = [nlbatch.rule("add", 4, 10000 + i, "nop") for i in range(3)]
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"acks for rule pref 10000 \(and 2 more\): no answer"):
        nlbatch.send(reqs)
    assert time.monotonic() - start < 5
    assert silent[0].options[(nlerr.SOL_NETLINK, nlerr.NETLINK_EXT_ACK)] == 1


@pytest.mark.parametrize(
    "dump,name",
    [
        (lambda: nldump.rules(socket.AF_INET6), r"rules \(IPv6\)"),
        (lambda: nldump.routes(socket.AF_INET, 60001), r"routes \(IPv4\)"),
        (nldump.links, "links"),
        (nldump.addresses, "addresses"),
    ],
)
def test_a_dump_without_an_answer_fails_in_bounded_time_naming_it(silent, dump, name):
    start = time.monotonic()
    with pytest.raises(
        BackendError, match=rf"netlink dump of {name}: no answer from the kernel within 0.2 s"
    ):
        dump()
    assert time.monotonic() - start < 5
    assert silent[0].options[(nlerr.SOL_NETLINK, nlerr.NETLINK_EXT_ACK)] == 1


def test_socket_errors_are_wrapped_naming_the_object(monkeypatch):
    def no_socket(*args):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(socket, "socket", no_socket)
    with pytest.raises(
        BackendError,
        match=r"netlink batch of 1 change\(s\) from route default "
        r"table 60001: \[Errno 24\]",
    ):
        nlbatch.send([nlbatch.route("del", 4, 60001, "default")])
    with pytest.raises(BackendError, match=r"netlink dump of rules \(IPv4\): \[Errno 24\]"):
        nldump.rules(socket.AF_INET)


def test_a_receive_error_is_wrapped_naming_the_object(monkeypatch):
    class Overrun(SilentKernel):
        def recv(self, size):
            raise OSError(errno.ENOBUFS, "No buffer space available")

    monkeypatch.setattr(socket, "socket", Overrun)
    with pytest.raises(
        BackendError,
        match=r"netlink dump of links: netlink receive failed: "
        r"\[Errno 105\]",
    ):
        nldump.links()


def test_the_real_sockets_are_bounded_and_ask_for_reasons():
    """Unprivileged: opening and configuring a netlink socket needs no root."""
    with nlbatch._open() as sock:
        assert sock.gettimeout() == nlerr.RECV_TIMEOUT
        assert sock.getsockopt(nlerr.SOL_NETLINK, nlerr.NETLINK_EXT_ACK) == 1


def test_the_kernel_refusing_a_dump_says_why():
    """Dumps need no root: a header the kernel's strict check refuses (Linux >= 4.20) comes
    back as an error with its reason, and a filter on a table that does not exist is empty."""
    bad = struct.pack("BBBBBBBBI", socket.AF_INET, 8, 0, 0, 0, 0, 0, 0, 0)  # dst_len set
    with pytest.raises(nlerr.NetlinkRequestError) as err:
        nldump._dump_once(nldump.RTM_GETROUTE, bad, nldump._route, strict=True)
    assert str(err.value) == (
        "netlink dump of routes (IPv4): [Errno 22] Invalid argument: "
        "Invalid values in header for FIB dump request"
    )
    assert nldump.routes(socket.AF_INET, 4_000_000_000) == []  # ENOENT: no such table
    assert nldump.routes(socket.AF_INET6, 4_000_000_000) == []
