"""Which WireGuard backend runs here: the kernel module or wireguard-go (`select_backend`), and
every backend present (`present_backends`, for `down`).

Looking costs nothing and changes nothing: the kernel backend counts as present when the
`wireguard` generic-netlink family is registered (one CTRL_CMD_GETFAMILY request, no link is
created). Only a caller that is about to change the host (`apply`) passes `may_load=True`,
which lets the kernel autoload a module that is installed but not loaded yet.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from wggw.backends.wireguard import WgBackend, delete_link
from wggw.core.errors import BackendError, BackendUnavailableError

NAMES = ("auto", "kernel", "userspace")
NETLINK_GENERIC, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME = 16, 0x10, 3, 2
NLMSG_ERROR, F_REQUEST, F_ACK = 2, 0x1, 0x4
RECV_TIMEOUT = 5.0


def genl_family_registered(name: str = "wireguard") -> bool:
    """Does the kernel know the generic-netlink family `name`? A pure read."""
    attr_data = name.encode() + b"\0"
    attr = struct.pack("HH", 4 + len(attr_data), CTRL_ATTR_FAMILY_NAME) + attr_data
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("BBH", CTRL_CMD_GETFAMILY, 1, 0) + attr
    msg = struct.pack("IHHII", 16 + len(body), GENL_ID_CTRL, F_REQUEST | F_ACK, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as sock:
        sock.settimeout(RECV_TIMEOUT)
        sock.bind((0, 0))
        sock.send(msg)
        data = sock.recv(65536)
    # The answer is a CTRL_CMD_NEWFAMILY message (then an ACK), or an error (-ENOENT).
    _length, kind = struct.unpack_from("IH", data, 0)
    if kind != NLMSG_ERROR:
        return True
    code = -struct.unpack_from("i", data, 16)[0]
    if code in (0, errno.ENOENT):
        return code == 0
    raise OSError(code, os.strerror(code))


def kernel_problem(may_load: bool = False) -> str | None:
    """None if kernel WireGuard is usable here, else why not. A module that is installed but
    not loaded counts as usable (`apply` loads it); with `may_load` it is loaded now, by
    creating and deleting a probe link, so a failure shows before anything else is done."""
    try:
        if genl_family_registered():
            return None
    except OSError as e:
        return f"generic netlink lookup of the wireguard family failed: {e}"
    if not module_installed():
        return "the wireguard module is neither loaded nor installed"
    return _load_module() if may_load else None


def module_installed(release: str | None = None) -> bool:
    """Is wireguard.ko in this kernel's module index (modules.dep / modules.builtin)?"""
    base = f"/lib/modules/{release or os.uname().release}"
    for index in ("modules.dep", "modules.builtin"):
        try:
            with open(f"{base}/{index}", encoding="utf-8", errors="replace") as f:
                if any("/wireguard.ko" in line.split(":", 1)[0] for line in f):
                    return True
        except OSError:
            continue
    return False


def _load_module() -> str | None:
    """`link add` makes the kernel autoload the module (rtnl-link-wireguard alias)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    name = "wggwprobe" + os.urandom(3).hex()  # 15 chars, unlike anything an operator names
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="wireguard")
    except (NetlinkError, OSError) as e:
        return f"link add kind=wireguard failed: {e}"
    delete_link(name)  # raises (naming the link) rather than leave it behind silently
    return None


def select_backend(name: str = "auto", may_load: bool = False) -> WgBackend:
    """The backend called `name`, or for "auto" the kernel one where the module works,
    else wireguard-go; raise BackendUnavailableError saying what to install."""
    from wggw.backends import wg_kernel, wg_userspace

    if name not in NAMES:
        raise BackendError(f"WireGuard backend {name!r}: unknown (auto, kernel or userspace)")
    problem = None
    if name in ("auto", "kernel"):
        problem = kernel_problem(may_load)
        if problem is None:
            return wg_kernel.KernelBackend()
        if name == "kernel":
            raise BackendUnavailableError(
                f"no WireGuard kernel module: {problem}; "
                "load it (modprobe wireguard; Linux >= 5.6) or use --backend userspace"
            )
    binary = wg_userspace.find_wireguard_go()
    if binary is not None:
        return wg_userspace.UserspaceBackend(binary)
    prefix = f"no WireGuard kernel module ({problem}) and " if problem else ""
    raise BackendUnavailableError(
        f"{prefix}wireguard-go not found on PATH or in WGGW_WIREGUARD_GO: "
        "apt-get install wireguard-go (or load the wireguard kernel module)"
    )


def present_backends() -> list[WgBackend]:
    """Every backend whose devices could be here (`down` removes devices of either kind);
    wireguard-go by name when nothing else is found, so its leftovers are still looked for."""
    from wggw.backends import wg_kernel, wg_userspace

    found: list[WgBackend] = []
    if kernel_problem() is None:
        found.append(wg_kernel.KernelBackend())
    binary = wg_userspace.find_wireguard_go()
    if binary is not None or not found:
        found.append(wg_userspace.UserspaceBackend(binary or "wireguard-go"))
    return found
