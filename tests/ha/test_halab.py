"""The HA lab's own machinery against real keepalived and real packets: the internet host sees
which gateway answers for a floating address, a takeover after each way of breaking the holder,
a wrong source the moment it arrives, and nothing of the run is left afterwards.

The keepalived configuration here is the lab's own, one floating test address and nothing of
wggw: it checks the harness the product tests (test_failover.py) stand on, not the product."""

from __future__ import annotations

import json
import os
import time

import pytest

from wggw.lab import hafigures as hf
from wggw.lab.ha import GATEWAYS, INET_DEV, INET_V4, UPLINK, WAYS, HaLab
from wggw.lab.hacycle import vrrp_states
from wggw.lab.netns import wait_until

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
VIPS = ("203.0.113.99", "2001:db8:ffff::99")
CONF = """global_defs {{
  router_id {gw}
  vrrp_version 3
}}
vrrp_instance lab {{
  state BACKUP
  interface uplink0
  virtual_router_id 99
  priority {prio}
  advert_int 0.2
  virtual_ipaddress {{
    203.0.113.99/24 dev uplink0
  }}
  virtual_ipaddress_excluded {{
    2001:db8:ffff::99/64 dev uplink0
  }}
}}
"""
# One UDP datagram to the internet host's echo port, tagged as tenant `acme`, from SRC.
SEND = (
    "import socket, sys\n"
    "s = socket.socket(); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind((sys.argv[1], 0)); s.sendto(sys.argv[2].encode(), (sys.argv[3], 7))\n"
)


@pytest.fixture
def lab(require_ha: None):
    with HaLab(("acme",)) as built:
        for gw, prio in zip(GATEWAYS, (200, 100), strict=True):
            conf = built.gw(gw).home / "lab-keepalived.conf"
            conf.write_text(CONF.format(gw=gw, prio=prio))
            built.start_keepalived(gw, conf)
        yield built
    assert not built.leftovers()


def _watch(lab: HaLab) -> tuple:
    log = lab.workdir / "watch.log"
    expect = {"tags": {"acme": ["203.0.113.10"]}, "macs": {lab.mac(g): g for g in GATEWAYS},
              "egress": list(VIPS), "own": [a for p in UPLINK.values() for a in p]}  # fmt: skip
    assert lab.inet is not None
    lab.start_script(lab.inet, "hawatch", "hawatch.py", INET_DEV, str(log), json.dumps(expect))
    return log, lambda: hf.parse_watch(log.read_text())


def _holder(watch, since: float) -> set[str]:
    return {g for t, _a, g in watch().echoes if t >= since}


def test_takeover_seen_each_way(lab: HaLab) -> None:
    _log, watch = _watch(lab)
    wait_until(lambda: _holder(watch, time.monotonic() - 0.3) == {"gwa"}, timeout=10 * SCALE,
               what="gwa (priority 200) answering for the floating addresses")  # fmt: skip
    for way in WAYS:
        active = _holder(watch, time.monotonic() - 0.3).pop()
        standby = next(g for g in GATEWAYS if g != active)
        t0, _done = lab.kill(active, way)
        wait_until(lambda t0=t0, sb=standby: hf.egress_recovery(watch(), t0, sb, VIPS) is not None,
                   timeout=10 * SCALE, what=f"{standby} answering after {way}")  # fmt: skip
        took = hf.egress_recovery(watch(), t0, standby, VIPS)
        assert took is not None and took < 5 * SCALE, (way, took)
        lab.mend(active, way)
        wait_until(lambda a=active: set(vrrp_states(lab, a).values()) <= {"BACKUP", "MASTER"}
                   and _holder(watch, time.monotonic() - 0.3) != set(), timeout=10 * SCALE,
                   what=f"{active} back after {way}")  # fmt: skip
    assert not watch().wrong


def test_wrong_source_is_seen(lab: HaLab) -> None:
    _log, watch = _watch(lab)
    gwb = lab.gw("gwb")
    # A probe tagged acme leaving with the gateway's own address (not acme's egress): wrong.
    gwb.run(["python3", "-c", SEND, UPLINK["gwb"][0], "acme 1 1", INET_V4])
    # Untagged traffic from the gateway's own address is the gateway's business: not wrong.
    gwb.run(["python3", "-c", SEND, UPLINK["gwb"][0], "", INET_V4])
    wait_until(lambda: watch().wrong, timeout=5 * SCALE, what="the wrong source in the log")
    time.sleep(0.3)
    wrong = watch().wrong
    assert len(wrong) == 1 and wrong[0][1] == f"acme {UPLINK['gwb'][0]} {INET_V4}", wrong
