"""tc backend: wggw's BPF filters on clsact hooks (the third fail-closed layer, see
tcguard.py), over raw rtnetlink and the bpf() system call.

Why raw: pyroute2 0.9 has no cls_bpf filter, and loading the program needs bpf(2) anyway.
Observation reads only filters at naming.TC_PRIO; changes touch only those, plus the clsact
qdisc they hang on (created when missing; removed by `down` only when no filter is left).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Container, Iterable

from wggw.core import naming, tcguard
from wggw.core.errors import BackendError
from wggw.core.tcguard import EGRESS, INGRESS, TcSpec

RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46
NLMSG_ERROR, NLMSG_DONE = 2, 3
F_REQUEST, F_ACK, F_DUMP, F_EXCL, F_CREATE = 0x1, 0x4, 0x300, 0x200, 0x400
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS, TCA_BPF_TAG = 6, 7, 8, 10
TCA_BPF_FLAG_ACT_DIRECT = 1
TC_H_CLSACT, CLSACT_HANDLE = 0xFFFFFFF1, 0xFFFF0000
PARENT = {INGRESS: 0xFFFFFFF2, EGRESS: 0xFFFFFFF3}
ETH_P_ALL = 0x0003
SYS_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "armv7l": 386,
    "riscv64": 280,
    "ppc64le": 361,
    "s390x": 351,
    "i686": 357,
}
BPF_PROG_LOAD, BPF_PROG_TYPE_SCHED_CLS = 5, 3
GONE = {errno.ENOENT, errno.EINVAL, errno.ENODEV}


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


def _tcmsg(ifindex: int, handle: int, parent: int, info: int) -> bytes:
    return struct.pack("BBHiIII", 0, 0, 0, ifindex, handle, parent, info)


def _info() -> int:
    return (naming.TC_PRIO << 16) | socket.htons(ETH_P_ALL)


def _request(
    msg_type: int, flags: int, body: bytes, what: str, ok: Container[int] = frozenset()
) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0) as sock:
        sock.bind((0, 0))
        header = struct.pack("IHHII", 16 + len(body), msg_type, flags | F_REQUEST | F_ACK, 1, 0)
        sock.send(header + body)
        data = sock.recv(65536)
    length, kind = struct.unpack_from("IH", data, 0)
    if kind == NLMSG_ERROR:
        code = -struct.unpack_from("i", data, 16)[0]
        if code and code not in ok:
            raise BackendError(f"{what}: [Errno {code}] {os.strerror(code)}")


def load_program(hook: str) -> int:
    """bpf(BPF_PROG_LOAD) of wggw's program for `hook`; returns its fd (caller closes)."""
    prog = tcguard.PROGRAMS[hook]
    insns = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"GPL")
    name = tcguard.NAMES[hook].encode()[:15]
    attr = ctypes.create_string_buffer(
        struct.pack(
            "<IIQQIIQII16s",
            BPF_PROG_TYPE_SCHED_CLS,
            len(prog) // 8,
            ctypes.addressof(insns),
            ctypes.addressof(lic),
            0,
            0,
            0,
            0,
            0,
            name,
        ),
        128,
    )
    number = SYS_BPF.get(os.uname().machine)
    if number is None:
        raise BackendError(
            f"tc program {tcguard.NAMES[hook]}: bpf(2) number unknown on {os.uname().machine}"
        )
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, BPF_PROG_LOAD, attr, 128)
    if fd < 0:
        code = ctypes.get_errno()
        raise BackendError(
            f"tc program {tcguard.NAMES[hook]}: bpf load failed: [Errno {code}] {os.strerror(code)}"
        )
    return fd


def install(ifindex: int, spec: TcSpec) -> None:
    """Make `spec` the only filter at wggw's priority on that hook (creating clsact if
    missing). What was there at that priority is deleted first, in the same breath."""
    what = f"tc {spec.hook} filter on {spec.dev}"
    _request(
        RTM_NEWQDISC,
        F_CREATE | F_EXCL,
        _tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0) + _attr(TCA_KIND, b"clsact\0"),
        f"clsact qdisc on {spec.dev}",
        {errno.EEXIST},
    )
    remove(ifindex, spec)
    fd = load_program(spec.hook)
    try:
        opts = (
            _attr(TCA_BPF_FD, struct.pack("I", fd))
            + _attr(TCA_BPF_NAME, spec.prog.encode() + b"\0")
            + _attr(TCA_BPF_FLAGS, struct.pack("I", TCA_BPF_FLAG_ACT_DIRECT))
        )
        body = (
            _tcmsg(ifindex, naming.TC_HANDLE, PARENT[spec.hook], _info())
            + _attr(TCA_KIND, b"bpf\0")
            + _attr(TCA_OPTIONS, opts)
        )
        _request(RTM_NEWTFILTER, F_CREATE | F_EXCL, body, what)
    finally:
        os.close(fd)


def remove(ifindex: int, spec: TcSpec) -> None:
    """Delete every filter at wggw's priority on that hook (gone already = fine)."""
    body = _tcmsg(ifindex, 0, PARENT[spec.hook], naming.TC_PRIO << 16)
    _request(RTM_DELTFILTER, 0, body, f"tc {spec.hook} filters on {spec.dev}", GONE)


def remove_empty_clsact(ifindex: int, dev: str) -> None:
    """`down` on a device wggw does not own: drop the clsact qdisc if no filter is left."""
    if any(_dump(ifindex, PARENT[h]) for h in (INGRESS, EGRESS)):
        return
    _request(
        RTM_DELQDISC,
        0,
        _tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0),
        f"clsact qdisc on {dev}",
        GONE,
    )


def _dump(ifindex: int, parent: int) -> list[dict]:
    """Every filter on one hook of one device (decoded: prio, protocol, handle, kind, bpf)."""
    return [_filter(m) for m in _dump_messages(RTM_GETTFILTER, _tcmsg(ifindex, 0, parent, 0))]


def _clsact_devices() -> set[int]:
    """Devices that have a clsact qdisc (one dump for the whole host): only they can hold
    wggw's filters, so a host with thousands of links costs one dump, not two per link."""
    out = set()
    for msg in _dump_messages(RTM_GETQDISC, _tcmsg(0, 0, 0, 0)):
        ifindex, parent = struct.unpack_from("iI", msg, 4)[0], struct.unpack_from("I", msg, 12)[0]
        kind = _attrs(msg[20:]).get(TCA_KIND, b"").split(b"\0", 1)[0]
        if kind == b"clsact" or parent == TC_H_CLSACT:
            out.add(ifindex)
    return out


def _dump_messages(msg_type: int, body: bytes) -> list[bytes]:
    out: list[bytes] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0) as sock:
        sock.bind((0, 0))
        header = struct.pack("IHHII", 16 + len(body), msg_type, F_REQUEST | F_DUMP, 1, 0)
        sock.send(header + body)
        for _ in range(100000):  # bounded: a dump ends with NLMSG_DONE
            data = sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("IH", data, off)
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return out  # an error here: no clsact on this device, so no filters
                out.append(data[off + 16 : off + length])
                off += (length + 3) & ~3
    return out


def _attrs(data: bytes) -> dict[int, bytes]:
    out, off = {}, 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("HH", data, off)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[off + 4 : off + length]
        off += (length + 3) & ~3
    return out


def _filter(msg: bytes) -> dict:
    _f, _p1, _p2, _idx, handle, _parent, info = struct.unpack_from("BBHiIII", msg, 0)
    attrs = _attrs(msg[20:])
    opts = _attrs(attrs.get(TCA_OPTIONS, b""))
    text = lambda b: b.split(b"\0", 1)[0].decode(errors="replace")  # noqa: E731
    return {
        "prio": info >> 16,
        "protocol": socket.ntohs(info & 0xFFFF),
        "handle": handle,
        "kind": text(attrs.get(TCA_KIND, b"")),
        "name": text(opts.get(TCA_BPF_NAME, b"")),
        "tag": opts.get(TCA_BPF_TAG, b"").hex(),
        "flags": struct.unpack("I", opts[TCA_BPF_FLAGS])[0] if TCA_BPF_FLAGS in opts else 0,
    }


def _observed(dev: str, hook: str, filters: list[dict]) -> TcSpec | None:
    ours = [f for f in filters if f["prio"] == naming.TC_PRIO and f["handle"]]
    if not ours:
        return None
    if len(ours) == 1:
        f = ours[0]
        expected = (
            ("kind", "bpf"),
            ("handle", naming.TC_HANDLE),
            ("protocol", ETH_P_ALL),
            ("flags", TCA_BPF_FLAG_ACT_DIRECT),
        )
        extra = [f"{k} {f[k]}" for k, want in expected if f[k] != want]
        # The kernel hashes with SHA-1 or SHA-256 depending on its version: either is ours.
        known = f["tag"] in tcguard.known_tags(hook)
        return TcSpec(dev, hook, f["name"], tcguard.tag(hook) if known else f["tag"], tuple(extra))
    return TcSpec(dev, hook, "", "", (f"{len(ours)} filters",))


def observe(links: Iterable[tuple[int, str]]) -> frozenset[TcSpec]:
    """wggw's filters (anything at its priority) on the ingress/egress hooks of these links."""
    out = set()
    hooked = _clsact_devices()
    for index, dev in links:
        if index not in hooked:
            continue
        for hook in (INGRESS, EGRESS):
            spec = _observed(dev, hook, _dump(index, PARENT[hook]))
            if spec is not None:
                out.add(spec)
    return frozenset(out)
