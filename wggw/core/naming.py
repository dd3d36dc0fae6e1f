"""The single definition of what wggw owns on a host.

Observation and cleanup (`down`) use only these definitions, so wggw can live beside
docker, firewalld, ufw, wg-quick and hand-made nftables tables without touching them,
and `down` works even when the store is gone: everything wggw creates is recognisable
from the kernel alone.
"""

from __future__ import annotations

import re

# --- WireGuard interfaces -------------------------------------------------------
# Interface names are chosen by the operator; wggw marks the links it creates with
# this IFLA_IFALIAS so that ownership is visible in the kernel (`ip link` shows it).
LINK_ALIAS = "wggw-managed"
IFNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,14}$")  # IFNAMSIZ-1 = 15 chars

# --- Routing tables -------------------------------------------------------------
# Each tenant gets a routing table id from this range (stored with the tenant).
TABLE_MIN = 60000
TABLE_MAX = 67999

# --- ip rules -------------------------------------------------------------------
# Every ip rule wggw creates has a priority inside this window (v4 and v6 alike);
# rules outside it are never read or changed. Must stay below main's 32766.
RULE_PREF_MIN = 10000
RULE_PREF_MAX = 31999

# --- Packet marks ---------------------------------------------------------------
# nftables marks packets arriving from a wggw interface with FLAG | tenant index,
# where the index is (table - TABLE_MIN). The ip rules select the tenant's table
# from the mark. wggw owns these bits of the fwmark and nothing else.
MARK_FLAG = 0x10000000
MARK_INDEX_MASK = 0x00001FFF  # 8192 indices >= TABLE_MAX - TABLE_MIN + 1
MARK_MASK = MARK_FLAG | MARK_INDEX_MASK
# Set on every packet that arrives on a wggw WireGuard interface (by wggw's tc program on the
# interface's ingress, and again by nft's tenant mark), cleared by nft's fail-closed guard once
# the packet's source is its tenant's egress IP. wggw's tc program on each uplink's egress drops
# any packet still carrying it: the layer that needs neither nft nor ip rules (see tcguard.py).
MARK_FROM_WG = 0x20000000
MARK_OWNED = MARK_MASK | MARK_FROM_WG  # every fwmark bit wggw sets or tests

# --- nftables -------------------------------------------------------------------
NFT_FAMILY = "inet"
NFT_TABLE = "wggw"

# --- tc (the third fail-closed layer) -------------------------------------------
# wggw's tc filters sit on clsact hooks at this priority, with this handle, and carry one of
# these BPF program names: ingress of each wggw WireGuard interface, egress of each uplink.
# Filters at other priorities are never read or changed; a clsact qdisc on a device wggw
# does not own is removed by `down` only when no filter at all is left on it.
TC_PRIO = 0x77
TC_HANDLE = 1
TC_PROG_INGRESS = "wggw_fromwg"
TC_PROG_EGRESS = "wggw_guard"

# --- Addresses --------------------------------------------------------------------
# Egress addresses wggw adds to an uplink carry this IFA_PROTO value, so `down`
# removes exactly those (and never an address the operator configured).
ADDR_PROTO = 0x77

# --- Userspace WireGuard ------------------------------------------------------
WG_SOCKET_DIR = "/var/run/wireguard"
RUNTIME_DIR = "/run/wggw"  # default; WGGW_RUN_DIR overrides it (runfiles.runtime_dir())


def tenant_mark(table: int) -> int:
    """The fwmark given to packets of the tenant whose routing table is `table`."""
    if not TABLE_MIN <= table <= TABLE_MAX:
        raise ValueError(f"table {table} outside wggw's range {TABLE_MIN}-{TABLE_MAX}")
    return MARK_FLAG | (table - TABLE_MIN)


def owns_table(table: int) -> bool:
    return TABLE_MIN <= table <= TABLE_MAX


def owns_rule_pref(pref: int) -> bool:
    return RULE_PREF_MIN <= pref <= RULE_PREF_MAX


def valid_name(name: str) -> bool:
    """Safe as an interface name, a label, a file name and an nft comment."""
    return bool(IFNAME_RE.match(name))
