"""Key rotation with real wireguard-go: overlap keeps the client working on its old config,
the new config works, the retired key no longer completes a handshake, and other peers'
sessions are untouched. The shipped cron line runs as cron would, and a rotation killed
part-way converges on the next run."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gwhelper import up

from wggw.backends import runfiles
from wggw.lab.topology import FetchError

REPO = Path(__file__).resolve().parents[2]


def peer_json(lab, ref: str) -> dict:
    return json.loads(lab.wggw("peer", "show", ref, "--json").stdout)


def test_overlap_then_new_config_then_old_key_retired(lab, tmp_path):
    gw = up(lab)
    acme, out = lab.client("acme"), tmp_path / "outbox"
    assert gw.seen("acme", 4) == "203.0.113.10" and gw.seen("globex", 4) == "203.0.113.20"
    globex_hs = gw.handshake_of("globex/laptop")
    old_conf = lab.wggw("peer", "config", "acme/laptop").stdout
    old_key = peer_json(lab, "acme/laptop")["public_key"]

    report = json.loads(
        lab.wggw(
            "rotate",
            "--peer",
            "acme/laptop",
            "--older-than",
            "0s",
            "--grace",
            "1h",
            "--out",
            str(out),
            "--json",
        ).stdout
    )
    assert [r["peer"] for r in report["rotated"]] == ["acme/laptop"]
    conf_path = out / "acme" / "laptop.conf"
    assert conf_path.stat().st_mode & 0o777 == 0o600
    new_conf = conf_path.read_text()
    assert new_conf == lab.wggw("peer", "config", "acme/laptop").stdout != old_conf
    shown = peer_json(lab, "acme/laptop")
    assert shown["retiring"]["public_key"] == old_key and shown["public_key"] != old_key

    # Grace: the client still on its old config keeps working, without reconnecting.
    assert gw.seen("acme", 4, retry=False) == "203.0.113.10"
    assert gw.seen("acme", 6) == "2001:db8:ffff::10"
    # The same client on the new config works (and its handshake ends the overlap).
    acme.replace_wireguard(new_conf)
    assert gw.seen("acme", 4) == "203.0.113.10" and gw.seen("acme", 6) == "2001:db8:ffff::10"
    applied = lab.wggw("apply").stdout
    assert "retire old key of acme/laptop" in applied
    assert peer_json(lab, "acme/laptop")["retiring"] is None
    lab.wggw("plan", "--detailed-exitcode")

    # After retirement the old key no longer completes a handshake.
    acme.replace_wireguard(old_conf)
    with pytest.raises(FetchError):
        acme.fetch_retry("http://203.0.113.254/", attempts=3, delay=0.5, timeout=2.0)
    assert acme.handshake_age() is None
    # Other peers' sessions were untouched throughout.
    assert gw.handshake_of("globex/laptop") == globex_hs
    assert gw.seen("globex", 4, retry=False) == "203.0.113.20"
    kinds = [e["kind"] for e in peer_json(lab, "acme/laptop")["rotations"]]
    assert kinds == ["key.rotate", "config.delivered", "key.retire"]


def _cron_line() -> tuple[dict[str, str], str]:
    """The environment assignments and the command of the shipped /etc/cron.d entry."""
    env, command = {}, None
    for line in (REPO / "templates" / "wggw-rotate.cron").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Z_]+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
            continue
        fields = line.split(None, 6)  # min hour dom month dow user command
        assert len(fields) == 7 and fields[5] == "root", line
        command = fields[6]
    assert command is not None
    return env, command


def _run_cron(lab, env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    """As cron does: /bin/sh -c with only the crontab's environment, no TTY, no stdin."""
    wggw_bin = Path(sys.executable).parent / "wggw"
    assert wggw_bin.exists(), (
        f"wggw must be installed next to {sys.executable} (scripts/install-deps)"
    )
    cron_env = {
        **env,
        "PATH": f"{wggw_bin.parent}:{env['PATH']}",
        "WGGW_STATE_DIR": str(lab.state_dir),
        # This test run's own runtime dir (a real cron job uses the default, /run/wggw): the job
        # must not write into another wggw's files on this host.
        "WGGW_RUN_DIR": str(runfiles.runtime_dir()),
        "HOME": "/root",
        "LOGNAME": "root",
    }
    argv = [
        "ip",
        "netns",
        "exec",
        lab.gw.name,
        "env",
        "-i",
        *[f"{k}={v}" for k, v in cron_env.items()],
        env.get("SHELL", "/bin/sh"),
        "-c",
        command,
    ]
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )


def test_the_shipped_cron_line_runs_quietly_and_rotates(lab):
    gw = up(lab)
    assert gw.seen("acme", 4) == "203.0.113.10"
    lab.wggw("tenant", "set", "acme", "--rotate-after", "1s")
    time.sleep(1.1)  # the key must be older than the tenant's policy
    env, command = _cron_line()
    res = _run_cron(lab, env, command)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    assert (lab.state_dir / "outbox" / "acme" / "laptop.conf").exists()
    assert not (lab.state_dir / "outbox" / "globex").exists()  # globex keeps the 90d default
    assert peer_json(lab, "acme/laptop")["retiring"] is not None
    assert gw.seen("acme", 4, retry=False) == "203.0.113.10"  # old config still works
    # A second run right away changes nothing and is just as quiet.
    res = _run_cron(lab, env, command)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_cron_run_reports_failure_on_stderr_with_exit_code(lab):
    up(lab)
    env, command = _cron_line()
    lab.wggw("tenant", "set", "acme", "--rotate-after", "1s")
    time.sleep(1.1)
    res = _run_cron(lab, env, command.replace("--quiet", "--quiet --notify /bin/false"))
    assert res.returncode == 3 and res.stdout == ""
    assert "notify failed for acme/laptop" in res.stderr


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.2])
def test_rotation_killed_midway_converges_next_run(lab, tmp_path, delay):
    gw = up(lab)
    for i in range(15):
        lab.wggw("peer", "add", f"acme/p{i}")
    lab.wggw("apply")
    assert gw.seen("acme", 4) == "203.0.113.10"
    out = tmp_path / "outbox"
    argv = [
        "ip",
        "netns",
        "exec",
        lab.gw.name,
        sys.executable,
        "-m",
        "wggw.cli.app",
        "--state-dir",
        str(lab.state_dir),
        "rotate",
        "--tenant",
        "acme",
        "--older-than",
        "0s",
        "--grace",
        "1h",
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=lab._py_env()
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # Whatever the kill interrupted, the client's old key still works...
    assert gw.seen("acme", 4) == "203.0.113.10"
    # ...and the next run finishes the job: applied, delivered, nothing pending.
    res = lab.wggw(
        "rotate",
        "--tenant",
        "acme",
        "--older-than",
        "1h",
        "--grace",
        "1h",
        "--out",
        str(out),
        "--json",
    )
    lab.wggw("plan", "--detailed-exitcode")
    peers = json.loads(lab.wggw("peer", "list", "--tenant", "acme", "--json").stdout)
    rotated = [p for p in peers if p["retiring"] is not None]
    for p in rotated:
        conf = out / "acme" / f"{p['name']}.conf"
        assert conf.read_text() == lab.wggw("peer", "config", f"acme/{p['name']}").stdout
    assert json.loads(res.stdout)["notify_failed"] == []
    assert gw.seen("acme", 4, retry=False) == "203.0.113.10"
