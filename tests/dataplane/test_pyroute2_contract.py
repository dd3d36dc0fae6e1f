"""What wggw relies on in pyroute2, checked without a kernel, so that a new pyroute2 release
that changes it fails here, loudly and by name, before a gateway finds out. pyproject.toml
pins pyroute2 below the next minor release; lift the pin only once this module passes.

Relied on: the WireGuard genetlink socket (`info`, `set`, `nlm_request`, `prid`, the
`async_class` / `module_err_level` hooks that quieten the probe), the wgmsg attribute names
wg_kernel sends and reads, `IPRoute(ext_ack=...)`, NetlinkError's `code`, and the rtnetlink
message classes the codec tests use as their oracle."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pyroute2
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket
from pyroute2.netlink.generic import wireguard as pr_wireguard

from wggw.backends import wg_kernel

ROOT = Path(__file__).resolve().parents[2]


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def test_installed_pyroute2_is_inside_the_pin():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if d.startswith("pyroute2")]
    low, high = re.fullmatch(r"pyroute2>=([\d.]+),<([\d.]+)", pin).groups()
    assert _release(low) <= _release(version("pyroute2")) < _release(high), pin


def test_wireguard_socket_methods_keep_their_shape():
    params = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert params(pyroute2.WireGuard.info) == ["self", "interface"]
    assert params(pyroute2.WireGuard.set)[:5] == [
        "self",
        "interface",
        "listen_port",
        "fwmark",
        "private_key",
    ]
    assert params(pyroute2.WireGuard.nlm_request)[:4] == ["self", "msg", "msg_type", "msg_flags"]
    assert isinstance(inspect.getattr_static(GenericNetlinkSocket, "prid"), property)
    assert "ext_ack" in inspect.signature(pyroute2.IPRoute).parameters


def test_the_probe_quietening_hooks_exist():
    """wg_kernel subclasses pyroute2's sockets to log a missing module at debug level."""
    assert pyroute2.WireGuard.async_class is pr_wireguard.AsyncWireGuard
    assert AsyncGenericNetlinkSocket.module_err_level == "error"
    assert "getattr(logging, self.module_err_level)" in inspect.getsource(AsyncGenericNetlinkSocket)
    quiet = wg_kernel._quiet_wireguard_class()
    assert issubclass(quiet, pyroute2.WireGuard)
    assert quiet.async_class.module_err_level == "debug"


def _nla_names(cls, seen=None) -> set[str]:
    """Every attribute name of a pyroute2 message class and of the nests inside it."""
    seen = set() if seen is None else seen
    if cls in seen:
        return set()
    seen.add(cls)
    names = set()
    for entry in getattr(cls, "nla_map", ()):
        name, kind = entry[-2], entry[-1]
        names.add(name)
        nested = getattr(cls, kind.lstrip("*"), None) if isinstance(kind, str) else None
        if inspect.isclass(nested):
            names |= _nla_names(nested, seen)
    return names


def test_every_wireguard_attribute_wggw_names_exists():
    used = set(re.findall(r"\bWG(?:DEVICE|PEER|ALLOWEDIP)_A_[A-Z_]+", inspect.getsource(wg_kernel)))
    assert {"WGDEVICE_A_PEERS", "WGPEER_A_ALLOWEDIPS", "WGALLOWEDIP_A_CIDR_MASK"} <= used
    missing = used - _nla_names(pr_wireguard.wgmsg)
    assert not missing, f"pyroute2 {version('pyroute2')} lacks {sorted(missing)}"
    assert (pr_wireguard.WGPEER_F_REMOVE_ME, pr_wireguard.WGPEER_F_REPLACE_ALLOWEDIPS) == (1, 2)
    assert (pr_wireguard.WG_CMD_SET_DEVICE, pr_wireguard.WG_GENL_VERSION) == (1, 1)


def test_netlink_error_carries_code_and_text():
    err = pyroute2.NetlinkError(22, "Backward goto not supported")
    assert err.code == 22 and err.args == (22, "Backward goto not supported")


def test_oracle_message_classes_keep_the_kernel_layouts():
    from pyroute2.netlink import nlmsgerr
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    layout = lambda cls: "".join(fmt for _, fmt in cls.fields)  # noqa: E731
    assert layout(fibmsg) == layout(rtmsg) == "BBBBBBBBI"
    assert layout(ifaddrmsg) == "BBBBI" and layout(nlmsgerr) == "i"
    assert [n for n, _ in ifinfmsg.fields][:5] == [
        "family",
        "__align",
        "ifi_type",
        "index",
        "flags",
    ]
    assert {24, 32, 20, 16} <= set(MarshalRtnl.msg_map)
