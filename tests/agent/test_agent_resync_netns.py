"""The agent's periodic resync is a full check of the WireGuard devices, also of an idle peer
whose block in wireguard-go's dump the agent's parser remembers (wg_uapi.BlockMemo): a peer
edited behind wggw's back (allowed IPs, PSK) or removed gives no kernel event, so only the
resync sees it, and it must repair it.

A real lab: wireguard-go, `wg set` as the other tool, `wg show` (not wggw's parser) as the
judge of what the device holds."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from conftest import AgentProc, forget_agent_files

from wggw.backends import runfiles
from wggw.core import keys
from wggw.lab.topology import Lab

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
RESYNC = 1.0
BOUND = (RESYNC + 4.0) * SCALE  # the next resync, and the round itself on a loaded host


@pytest.fixture
def resync_lab(require_root: None) -> Iterator[tuple]:
    import gwhelper

    runtime = runfiles.runtime_dir()
    before = set(runtime.glob("*")) if runtime.is_dir() else set()
    with Lab(("acme", "globex")) as lab:
        agents: list[AgentProc] = []
        try:
            gw = gwhelper.up(lab)
            lab.wggw("peer", "add", "acme/idle")  # never connects: its dump block stays put
            lab.wggw("apply")
            agents.append(AgentProc(lab, "--resync", str(RESYNC), "--max-repairs", "1000"))
            yield lab, gw, agents[0]
        finally:
            for agent in agents:
                agent.stop(signal.SIGKILL)
            forget_agent_files()
            lab.wggw("down", check=False)
    left = (set(runtime.glob("*")) if runtime.is_dir() else set()) - before
    assert not left, f"left in {runtime}: {sorted(p.name for p in left)}"


def _wg(lab, ifname: str, what: str) -> dict[str, str]:
    """`wg show IF <what>`: public key -> value."""
    out = lab.gw.run(["wg", "show", ifname, what]).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if line)


def _repaired(lab, ifname: str, what: str, want: dict[str, str]) -> float:
    start = time.monotonic()
    while time.monotonic() - start < BOUND:
        if _wg(lab, ifname, what) == want:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"wg show {what} not repaired after {BOUND}s: {_wg(lab, ifname, what)}")


def test_resync_finds_and_repairs_a_peer_edited_in_wireguard_go(resync_lab) -> None:
    lab, gw, agent = resync_lab
    peers = gw.status()["peers"]
    key = next(p["public_key"] for p in peers if (p["tenant"], p["name"]) == ("acme", "idle"))
    ips, psks = _wg(lab, gw.ifname, "allowed-ips"), _wg(lab, gw.ifname, "preshared-keys")
    time.sleep(2.5 * RESYNC)  # resyncs have read the idle peer's block, unchanged, already
    start_rounds = agent.log().count("converged trigger=resync")

    lab.gw.run(["wg", "set", gw.ifname, "peer", key, "allowed-ips", "10.10.0.250/32"])
    took = [_repaired(lab, gw.ifname, "allowed-ips", ips)]

    psk_file = lab.workdir / "other-psk"
    fd = os.open(psk_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(keys.generate_psk().reveal())
    lab.gw.run(["wg", "set", gw.ifname, "peer", key, "preshared-key", str(psk_file)])
    assert _wg(lab, gw.ifname, "preshared-keys")[key] != psks[key]
    took.append(_repaired(lab, gw.ifname, "preshared-keys", psks))

    lab.gw.run(["wg", "set", gw.ifname, "peer", key, "remove"])
    took.append(_repaired(lab, gw.ifname, "allowed-ips", ips))
    assert _wg(lab, gw.ifname, "preshared-keys") == psks

    print(f"\n[agent] peer edited in wireguard-go, repaired by the resync after {took} s")
    # the periodic resync did it (no kernel event tells of a peer change in wireguard-go)
    agent.wait_log("converged trigger=resync", BOUND, start_rounds + 3)
    lab.wggw("plan", "--detailed-exitcode")
