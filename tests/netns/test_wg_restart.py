"""wireguard-go's side effects over time (issue 9, defects 4 and 5), real wireguard-go:
- peers that never connected get no keepalive from the gateway, and the log stays small;
- after wireguard-go dies and `apply` restarts it, the gateway starts the handshakes itself
  with the endpoints it remembered, so clients without keepalive are back within seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from gwhelper import Gateway, up

from wggw.backends import runfiles
from wggw.lab.topology import INET_URL_V4, new_ifname


@pytest.fixture
def userspace(monkeypatch):
    """wireguard-go's own behaviour: whatever WGGW_BACKEND the tier sets (the kernel VM sets
    kernel), these tests run wggw on wireguard-go (lab.wggw passes the environment on)."""
    monkeypatch.setenv("WGGW_BACKEND", "userspace")


def _kernel_backend_or_skip() -> None:
    from wggw.backends.select import select_backend
    from wggw.core.errors import BackendUnavailableError

    try:
        select_backend("kernel")
    except BackendUnavailableError as e:
        pytest.skip(f"kernel WireGuard: {e}")


# Runs in a client namespace: GET the URL every 50 ms (each try bounded) for at most
# `budget` seconds; print the CLOCK_MONOTONIC time of the first good reply, or nothing.
PROBE = r"""
import socket, sys, time, urllib.request
url, budget = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + budget
while time.monotonic() < end:
    try:
        urllib.request.urlopen(url, timeout=0.4).read()
        print(time.monotonic()); break
    except OSError:
        time.sleep(0.05)
"""


def wg_peers(lab, ifname: str) -> dict[str, dict[str, str]]:
    """`wg show IF dump` in the gateway: per peer public key, its endpoint and keepalive."""
    out = lab.gw.run(["wg", "show", ifname, "dump"]).stdout.splitlines()[1:]
    return {f[0]: {"endpoint": f[2], "keepalive": f[7]} for f in (line.split("\t") for line in out)}


def test_peers_without_endpoint_get_no_gateway_keepalive_and_the_log_stays_small(lab, userspace):
    gw = Gateway(lab, new_ifname("wgk")).configure()
    for i in range(40):  # peers that never connect, as a client config asking for keepalive
        lab.wggw("peer", "add", f"acme/idle{i}", "--keepalive", "25")
    lab.wggw("apply")
    peers = wg_peers(lab, gw.ifname)
    assert len(peers) == 42
    assert {p["keepalive"] for p in peers.values()} == {"off"}, peers
    # A gateway keepalive to a peer without endpoint logs "no known endpoint" every 5 s per
    # peer (about 5 KB per round here); 11 s is two rounds and more.
    time.sleep(11)
    log = runfiles.log_file(gw.ifname)
    assert log.stat().st_size < 1024, log.read_text()[-500:]
    # The client's config still asks for its own keepalive.
    assert "PersistentKeepalive = 25" in lab.wggw("peer", "config", "acme/idle0").stdout
    lab.wggw("down")


def test_log_has_a_hard_cap_and_rotates(lab, userspace):
    gw = Gateway(lab, new_ifname("wgl")).configure()
    lab.wggw("apply")
    pid = int(runfiles.pid_file(gw.ifname).read_text())
    limits = open(f"/proc/{pid}/limits").read()
    size_line = next(line for line in limits.splitlines() if line.startswith("Max file size"))
    assert size_line.split()[3] == str(1 << 20), size_line  # RLIMIT_FSIZE on wireguard-go
    log = runfiles.log_file(gw.ifname)
    with open(log, "ab") as f:  # as if wireguard-go had written 600 KB
        f.write(b"x" * 600_000)
    lab.wggw("status")
    assert log.stat().st_size == 0 and runfiles.old_log_file(gw.ifname).stat().st_size >= 600_000
    assert oct(runfiles.old_log_file(gw.ifname).stat().st_mode & 0o777) == "0o600"
    lab.wggw("down")
    assert not runfiles.old_log_file(gw.ifname).exists()


def _recovery(lab, budget: float = 20.0) -> tuple[float, float]:
    """Kill wireguard-go, run `apply`, and time it: (apply seconds, seconds from the start
    of `apply` to acme's first good reply)."""
    probe = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.client("acme").name,
            sys.executable,
            "-c",
            PROBE,
            INET_URL_V4,
            str(budget),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        start = time.monotonic()
        lab.wggw("apply")
        applied = time.monotonic() - start
        out, _ = probe.communicate(timeout=budget + 10)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait(timeout=5)
    assert out.strip(), f"no good reply within {budget} s of apply"
    return applied, float(out) - start


def _kill_device(lab, ifname: str, backend: str) -> None:
    """wireguard-go: SIGKILL its process (the link goes with it); kernel: delete the link."""
    if backend == "userspace":
        os.kill(int(runfiles.pid_file(ifname).read_text()), signal.SIGKILL)
    else:
        lab.gw.ip("link", "del", ifname)
    deadline = time.monotonic() + 5
    while lab.gw.ip("link", "show", ifname, check=False).returncode == 0:
        assert time.monotonic() < deadline, "the killed wireguard-go's link did not go away"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "backend", ["userspace", pytest.param("kernel", marks=pytest.mark.kernel_tier)]
)
def test_tunnels_come_back_fast_after_wireguard_go_restarts(lab, monkeypatch, backend):
    if backend == "kernel":
        _kernel_backend_or_skip()
    monkeypatch.setenv("WGGW_BACKEND", backend)
    gw = up(lab)  # clients without keepalive
    assert gw.seen("acme", 4) == "203.0.113.10" and gw.seen("globex", 4) == "203.0.113.20"
    lab.wggw("status")  # an observation (apply, plan, status: e.g. a cron job) records endpoints
    remembered = json.loads(runfiles.endpoints_file(gw.ifname).read_text())
    assert len(remembered) == 2 and all(v.startswith("198.51.100.") for v in remembered.values())
    figures = []
    for _ in range(2):
        _kill_device(lab, gw.ifname, backend)
        applied, recovered = _recovery(lab)
        figures.append((round(applied, 2), round(recovered, 2)))
        assert recovered < 5.0 * float(os.environ.get("WGGW_TIME_SCALE", "1")), figures
    print(f"\nrecovery after a {backend} device restart (apply s, first good reply s): {figures}")
    assert gw.seen("globex", 4, retry=False) == "203.0.113.20"  # every peer, not just one
    lab.wggw("plan", "--detailed-exitcode")  # the kick left nothing to change
    lab.wggw("down")
    assert not runfiles.endpoints_file(gw.ifname).exists()
