"""Failover cycles in the HA lab: watch who holds the egress IPs and whether clients get good
replies, break the active gateway, time the recovery, mend it, wait until it stands by again.

Shared by the HA netns test and benchmark. Every wait is bounded; a cycle whose recovery does
not come within its timeout is recorded with None (a failure for the caller to judge), never
waited on forever.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence

from wggw.lab import hafigures as hf
from wggw.lab.ha import GATEWAYS, INET_DEV, INET_V4, INET_V6, UPLINK, HaLab
from wggw.lab.netns import LabError, wait_until

PROBE_INTERVAL = 0.02
_STATE_RE = re.compile(r"\((\S+)\) Entering (\w+) STATE")


class Monitor:
    """The watcher in `inet` and one probe per client; `tenants` maps a client role (the
    tenant's name, also the probe's tag) to its egress addresses (v4 and/or v6)."""

    def __init__(self, lab: HaLab, tenants: Mapping[str, Sequence[str]]) -> None:
        self.lab, self.tenants = lab, {t: tuple(a) for t, a in tenants.items()}
        self.watch_log = lab.workdir / "hawatch.log"
        self.probe_logs = {t: lab.workdir / f"haprobe-{t}.log" for t in self.tenants}

    def start(self) -> Monitor:
        lab = self.lab
        assert lab.inet is not None
        egress = sorted({a for addrs in self.tenants.values() for a in addrs})
        expect = {
            "tags": {t: list(a) for t, a in self.tenants.items()},
            "macs": {lab.mac(g): g for g in GATEWAYS},
            "egress": egress,
            "own": [a for pair in UPLINK.values() for a in pair],
        }
        lab.start_script(lab.inet, "hawatch", "hawatch.py", INET_DEV, str(self.watch_log),
                         json.dumps(expect))  # fmt: skip
        for tenant, addrs in self.tenants.items():
            pairs = [f"{INET_V6 if ':' in a else INET_V4}={a}" for a in addrs]
            lab.start_script(lab.client(tenant), "haprobe", "haprobe.py", tenant,
                             str(self.probe_logs[tenant]), str(PROBE_INTERVAL), *pairs)  # fmt: skip
        return self

    def watch(self) -> hf.Watch:
        return hf.parse_watch(self.watch_log.read_text(errors="replace"))

    def replies(self, tenant: str) -> list[tuple[float, float, bool]]:
        return hf.parse_probe(self.probe_logs[tenant].read_text(errors="replace"))

    def holder(self, within: float = 0.5) -> str | None:
        """The one gateway every egress IP answered from in the last `within` s, else None."""
        now, watch = time.monotonic(), self.watch()
        who = set()
        for addr in {a for addrs in self.tenants.values() for a in addrs}:
            last = [g for t, a, g in watch.echoes if a == addr and t >= now - within]
            if not last:
                return None
            who.add(last[-1])
        return who.pop() if len(who) == 1 else None

    def flowing(self, within: float = 0.5) -> bool:
        """Every client got a good reply in the last `within` s."""
        now = time.monotonic()
        return all(
            any(good and r >= now - within for _s, r, good in self.replies(t)[-50:])
            for t in self.tenants
        )

    def steady(self, timeout: float) -> str:
        """Wait until one gateway holds every egress IP and every client gets good replies."""
        wait_until(lambda: self.holder() is not None and self.flowing(), timeout=timeout,
                   interval=0.1, what="one holder of the egress IPs and good replies")  # fmt: skip
        holder = self.holder()
        assert holder is not None
        return holder


def vrrp_states(lab: HaLab, label: str) -> dict[str, str]:
    """Each VRRP instance's last state in gateway `label`'s keepalived log (MASTER, BACKUP,
    FAULT)."""
    svc = lab.services.get((label, "keepalived"))
    if svc is None or not svc.log.exists():
        return {}
    return dict(_STATE_RE.findall(svc.log.read_text(errors="replace")))


def run_cycle(
    lab: HaLab,
    mon: Monitor,
    way: str,
    *,
    ready: Callable[[str], bool],
    timeout: float,
    settle: float,
) -> hf.Cycle:
    """Break the gateway that holds the egress IPs `way`, time the takeover, mend it and wait
    until `ready(gateway)` says it stands by again (bounded by `timeout` each)."""
    killed = mon.steady(timeout)
    standby = next(g for g in GATEWAYS if g != killed)
    t0, done = lab.kill(killed, way)
    cyc = hf.Cycle(way=way, killed=killed, standby=standby, t0=t0, done=done)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        cyc.egress_s = hf.egress_recovery(mon.watch(), t0, standby, _egress(mon))
        cyc.client_s = {t: hf.client_recovery(mon.replies(t), t0, done) for t in mon.tenants}
        if cyc.egress_s is not None and cyc.worst_client_s is not None:
            break
        time.sleep(0.1)
    lab.mend(killed, way)
    mended = time.monotonic()
    try:
        wait_until(lambda: ready(killed), timeout=timeout, interval=0.1,
                   what=f"{killed} standing by after {way}")  # fmt: skip
        time.sleep(settle)  # a failback (preempt) or a split brain ending shows up in this window
        mon.steady(timeout)
    except LabError as e:
        cyc.error = f"after mending {killed} ({way}): {e}"
    finally:
        end = time.monotonic()
        cyc.wrong = hf.wrong_between(mon.watch(), t0, end)
        cyc.mend_gap_s = max(hf.longest_gap(mon.replies(t), mended, end) for t in mon.tenants)
    return cyc


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.3f}s"


def _egress(mon: Monitor) -> list[str]:
    return sorted({a for addrs in mon.tenants.values() for a in addrs})


def run_cycles(
    lab: HaLab,
    mon: Monitor,
    ways: Sequence[str],
    *,
    ready: Callable[[str], bool],
    timeout: float,
    settle: float,
    log: Callable[[str], None] = lambda _m: None,
) -> list[hf.Cycle]:
    """`run_cycle` for each way in turn; every one breaks whichever gateway is active, so the
    traffic alternates between the two (failover, then failback). Stops after a cycle that
    never settled (its `error`)."""
    out = []
    for i, way in enumerate(ways):
        cyc = run_cycle(lab, mon, way, ready=ready, timeout=timeout, settle=settle)
        log(f"cycle {i + 1}/{len(ways)} {way} {cyc.killed}->{cyc.standby}: egress "
            f"{_s(cyc.egress_s)} clients {', '.join(_s(v) for v in cyc.client_s.values())} "
            f"wrong {len(cyc.wrong)} after mending {_s(cyc.mend_gap_s)}")  # fmt: skip
        out.append(cyc)
        if cyc.error:  # the lab is in no known state: the cycles so far are the result
            log(f"cycle {i + 1}: {cyc.error}; stopping")
            break
    return out
