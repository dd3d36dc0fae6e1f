"""The kernel's own reason (netlink extended ack) reaches wggw's error message, naming the
object, on each of our netlink paths: the batch encoder (addresses, routes, rules, links)
and the dump decoder.
Real kernel, in a fresh namespace; requests the kernel refuses change nothing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, struct
from wggw.backends.netlink import dump as nldump, rtnl as netlink
from wggw.core.desired import LinkSpec, RouteSpec
from wggw.core.errors import BackendError
from wggw.core.ruletree import RuleSpec

def attempt(fn):
    try:
        fn()
    except BackendError as e:
        return str(e)
    return "no error"

def batch(*items):
    with netlink.Netlink() as nl:
        nl.batch(list(items))

def link_mtu():
    # A link's MTU and up go through the batch encoder too (no pyroute2 import in apply).
    with netlink.Netlink() as nl:
        nl.set_link(LinkSpec("dummy0", 10))

bad_header = struct.pack("BBBBBBBBI", 2, 8, 0, 0, 0, 0, 0, 0, 0)  # dst_len set: not a filter
print(json.dumps({
    "rule": attempt(lambda: batch(("add", RuleSpec(4, 20000, "goto", goto=10000)))),
    "route": attempt(lambda: batch(("add", RouteSpec(4, 60001, "default", "lo", "198.51.100.1")))),
    "link": attempt(link_mtu),
    "dump": attempt(lambda: nldump._dump_once(nldump.RTM_GETROUTE, bad_header, nldump._route,
                                              strict=True)),
}))
"""


def test_kernel_reasons_reach_the_error_messages(netns):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    netns.ip("link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
    out = json.loads(netns.run([sys.executable, "-c", PROBE], env=env, timeout=30).stdout)
    assert out["rule"] == (
        "rule pref 20000: [Errno 22] Invalid argument: Backward goto not supported"
    )
    assert out["route"] == (
        "route default table 60001: [Errno 101] Network is unreachable: Nexthop has invalid gateway"
    )
    # the same form (errno, strerror, the kernel's reason) whichever path sent it
    assert out["link"].startswith("link dummy0: [Errno 22] Invalid argument: "), out["link"]
    assert "MTU" in out["link"] or "mtu" in out["link"], out["link"]
    assert out["dump"].startswith("netlink dump of routes (IPv4): [Errno 22] Invalid argument: ")
    assert "header" in out["dump"]
    # nothing was added by the refused requests
    assert "20000:" not in netns.ip("rule").stdout
    assert netns.ip("route", "show", "table", "60001", check=False).stdout.strip() == ""


MIDDLE = r"""
import json
from wggw.backends.netlink import rtnl as netlink
from wggw.core.desired import RouteSpec
from wggw.core.errors import BackendError
from wggw.core.ruletree import RuleSpec

ok, again = RuleSpec(4, 20001, "nop"), RuleSpec(4, 20002, "nop")
try:
    with netlink.Netlink() as nl:
        nl.batch([
            ("add", ok),
            ("add", RouteSpec(4, 60001, "default", "lo", "198.51.100.1")),  # refused
            ("add", again),
            ("add", ok),  # present already: EEXIST, which counts as done
        ])
    print(json.dumps("no error"))
except BackendError as e:
    print(json.dumps(str(e)))
"""


def test_a_refusal_in_the_middle_of_a_write_is_reported(netns):
    """Only a write's last request asks for an ack (nlbatch._ask_ack): a refusal earlier in
    the write still reaches the error, EEXIST still counts as done, and the requests around
    the refused one are carried out as the kernel handles them, in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = json.loads(netns.run([sys.executable, "-c", MIDDLE], env=env, timeout=30).stdout)
    assert out.startswith("route default table 60001: [Errno 101] Network is unreachable"), out
    rules = netns.ip("rule").stdout
    assert "20001:" in rules and "20002:" in rules
