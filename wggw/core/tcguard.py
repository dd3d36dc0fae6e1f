"""The third fail-closed layer, in tc: two tiny BPF programs and where they go (pure).

Why a third layer: the first two are nftables (tenant mark, source NAT, the postrouting guard)
and the ip rules (the mark trie, `fwmark ... unreachable`, `iif <wg> unreachable`). With both
gone at once (`nft flush ruleset` and a flush of the rule window), a tenant packet would take
`main`'s default route and leave un-NATed from its pool address. tc needs neither:

  ingress of each wggw WireGuard interface:  mark |= MARK_FROM_WG          (wggw_fromwg)
  egress of each uplink:   mark & MARK_FROM_WG ? drop : continue          (wggw_guard)

nftables' guard clears MARK_FROM_WG once a packet's source is its tenant's egress IP, so only
packets that nft has vouched for leave by an uplink. The cost per packet is a load, an OR or
AND and a branch, whatever the number of tenants; packets of the host itself and replies
never carry the bit. The programs return TC_ACT_UNSPEC when they let a packet pass, so other
filters on the same hook keep working.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from wggw.core import naming

INGRESS, EGRESS = "ingress", "egress"
TC_ACT_UNSPEC, TC_ACT_SHOT = -1, 2
SKB_MARK = 8  # offsetof(struct __sk_buff, mark)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


# eBPF opcodes used: LDX/STX word, ALU64 OR/AND immediate, MOV64 immediate, JEQ immediate, EXIT.
_LDX_W, _STX_W, _OR_K, _AND_K, _MOV_K, _JEQ_K, _EXIT = 0x61, 0x63, 0x47, 0x57, 0xB7, 0x15, 0x95

PROGRAMS = {
    INGRESS: b"".join(
        [
            _insn(_LDX_W, 2, 1, SKB_MARK),  # r2 = skb->mark
            _insn(_OR_K, 2, imm=naming.MARK_FROM_WG),  # r2 |= FROM_WG
            _insn(_STX_W, 1, 2, SKB_MARK),  # skb->mark = r2
            _insn(_MOV_K, 0, imm=TC_ACT_UNSPEC),  # continue with the next filter
            _insn(_EXIT),
        ]
    ),
    EGRESS: b"".join(
        [
            _insn(_LDX_W, 2, 1, SKB_MARK),  # r2 = skb->mark
            _insn(_AND_K, 2, imm=naming.MARK_FROM_WG),  # r2 &= FROM_WG
            _insn(_MOV_K, 0, imm=TC_ACT_UNSPEC),  # r0 = continue
            _insn(_JEQ_K, 2, off=1, imm=0),  # not from a wggw interface: keep r0
            _insn(_MOV_K, 0, imm=TC_ACT_SHOT),  # from wggw, not vouched for: drop
            _insn(_EXIT),
        ]
    ),
}
NAMES = {INGRESS: naming.TC_PROG_INGRESS, EGRESS: naming.TC_PROG_EGRESS}


def tag(hook: str) -> str:
    """The kernel's tag of a program (the first 8 bytes of a hash over its instructions), as
    shown in a filter dump: how observation knows the program was not swapped."""
    return hashlib.sha256(PROGRAMS[hook]).hexdigest()[:16]


def known_tags(hook: str) -> frozenset[str]:
    """Tags the kernel may show for wggw's program: SHA-256 since Linux 6.18, SHA-1 before."""
    return frozenset({tag(hook), hashlib.sha1(PROGRAMS[hook]).hexdigest()[:16]})


@dataclass(frozen=True, order=True)
class TcSpec:
    """wggw's filter on one hook of one device. Observation fills `prog`/`tag` from the
    kernel; `extra` names anything else found at wggw's priority (another filter, other
    flags), so that any difference from what wggw would install is a difference."""

    dev: str
    hook: str  # ingress | egress
    prog: str = ""
    tag: str = ""
    extra: tuple[str, ...] = ()

    @classmethod
    def wanted(cls, dev: str, hook: str) -> TcSpec:
        return cls(dev, hook, NAMES[hook], tag(hook))

    def describe(self) -> str:
        more = f" ({'; '.join(self.extra)})" if self.extra else ""
        return (
            f"tc filter add dev {self.dev} {self.hook} prio {naming.TC_PRIO} handle "
            f"{naming.TC_HANDLE} bpf da name {self.prog or '?'} tag {self.tag or '?'}{more}"
        )
