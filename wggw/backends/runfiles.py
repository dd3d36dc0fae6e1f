"""wggw's runtime files: where each one lives, and how to forget those of an interface or
a network namespace that is gone.

They live in runtime_dir(): naming.RUNTIME_DIR, or WGGW_RUN_DIR when set, so that a test run (or
a second wggw on the host) keeps its files apart from every other (pid and log of each
wireguard-go wggw started, the sysctl values wggw found, per network namespace). /run is one
directory for every namespace on the host, so a namespace deleted without `wggw down` (a test
lab, a crashed container) leaves its files behind: labs call `forget_*` when they delete what
they built.
"""

from __future__ import annotations

import os
from pathlib import Path

from wggw.core import naming


def runtime_dir() -> Path:
    """Where wggw keeps its runtime files on this host (WGGW_RUN_DIR overrides the default)."""
    return Path(os.environ.get("WGGW_RUN_DIR") or naming.RUNTIME_DIR)


def pid_file(ifname: str) -> Path:
    return runtime_dir() / f"{ifname}.pid"


def log_file(ifname: str) -> Path:
    return runtime_dir() / f"{ifname}.log"


def old_log_file(ifname: str) -> Path:
    """The previous part of a capped log (wglog.rotate)."""
    return runtime_dir() / f"{ifname}.log.1"


def endpoints_file(ifname: str) -> Path:
    """The last endpoint of each peer of the interface (endpoints.py)."""
    return runtime_dir() / f"{ifname}.endpoints.json"


def process_files(ifname: str) -> tuple[Path, ...]:
    """The runtime files of one wireguard-go process (gone with it)."""
    pid, old_log = pid_file(ifname), old_log_file(ifname)
    return (pid, tmp_of(pid), log_file(ifname), old_log, tmp_of(old_log))


def interface_files(ifname: str) -> tuple[Path, ...]:
    """Every runtime file wggw may keep for an interface: its process's, and the peers'
    endpoints, which outlive a restart of the process (endpoints.py)."""
    return (*process_files(ifname), endpoints_file(ifname), tmp_of(endpoints_file(ifname)))


def tmp_of(path: Path) -> Path:
    """The temporary file an atomic write of `path` goes through."""
    return path.with_name(path.name + ".tmp")


def netns_inode(path: str = "/proc/self/ns/net") -> int:
    """Identity of a network namespace (its nsfs inode), e.g. of /run/netns/NAME."""
    return os.stat(path).st_ino


def sysctl_record(inode: int) -> Path:
    return runtime_dir() / f"sysctl-{inode}.json"


def nft_record(inode: int) -> Path:
    """What the kernel showed of wggw's nft table right after wggw loaded it (no secrets)."""
    return runtime_dir() / f"nft-{inode}.json"


def forget_interface(ifname: str) -> None:
    """Remove what a wireguard-go interface of that name left (pid, logs, endpoints, socket)."""
    for path in (*interface_files(ifname), Path(naming.WG_SOCKET_DIR) / f"{ifname}.sock"):
        path.unlink(missing_ok=True)


def forget_netns(inode: int) -> None:
    """Remove the records (sysctl, nft) of a namespace that is being (or has been) deleted."""
    sysctl_record(inode).unlink(missing_ok=True)
    nft_record(inode).unlink(missing_ok=True)
