"""wireguard-go's PID file exists before wireguard-go does: a wggw killed right after the
fork must not leave a running device that no later apply or `down` can claim as its own."""

from __future__ import annotations

import subprocess

from wggw.backends import runfiles, wg_userspace


def test_the_child_records_its_own_pid_before_exec(tmp_path, monkeypatch):
    monkeypatch.setenv("WGGW_RUN_DIR", str(tmp_path))
    pidfile = runfiles.pid_file("wgtest0")
    # What the exec'd program sees at its first instruction: the file, holding its own PID.
    proc = subprocess.run(
        ["sh", "-c", 'cat "$1" && echo "$$"', "sh", str(pidfile)],
        preexec_fn=wg_userspace._child_setup("wgtest0"),
        capture_output=True,
        text=True,
        check=True,
    )
    recorded, own = proc.stdout.split()
    assert recorded == own
    assert pidfile.stat().st_mode & 0o777 == 0o600
    assert not pidfile.with_name(pidfile.name + ".tmp").exists()
