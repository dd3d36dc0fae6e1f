"""Exit codes that a script can trust (issue 9, defect 7): `plan --detailed-exitcode` never
exits 2 for bad input, a malformed number is a one-line usage error, and a user without
CAP_NET_ADMIN is told that root is needed (exit 77), also from the real CLI run unprivileged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from wggwtest import ROOT, dump

from wggw.core.errors import EXIT_NOPERM, EXIT_PLAN_CHANGES, EXIT_PLAN_USAGE, EXIT_USAGE
from wggw.ops.privilege import CAP_NET_ADMIN, effective_caps


def one_error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wggw: error: "), result.stderr
    assert (
        "Traceback" not in result.stdout + result.stderr
        and "error: unexpected" not in result.stderr
    )
    return lines[0]


def test_detailed_plan_without_store_is_not_changes_pending(cli, state_dir):
    assert EXIT_PLAN_USAGE not in (0, 1, EXIT_PLAN_CHANGES)
    line = one_error_line(cli("plan", "--detailed-exitcode", code=EXIT_PLAN_USAGE))
    assert "run `wggw init` first" in line
    # Without --detailed-exitcode bad input keeps the common code 2.
    one_error_line(cli("plan", code=EXIT_USAGE))


@pytest.mark.parametrize(
    "args",
    [
        ["--detailed-exitcode", "--bogus"],
        ["--bogus", "--detailed-exitcode"],
        ["--detailed-exitcode", "extra"],
    ],
)
def test_detailed_plan_usage_errors_are_not_changes_pending(gw, args):
    line = one_error_line(gw("plan", *args, code=EXIT_PLAN_USAGE))
    assert "plan --help" in line


@pytest.mark.parametrize(
    "args",
    [
        ["peer", "add", "acme/x", "--keepalive=--5"],
        ["peer", "add", "acme/x", "--keepalive", "--5"],
        ["interface", "add", "wg1", "--listen-port=--5", "--endpoint", "h:1"],
        ["interface", "add", "wg1", "--listen-port", "9" * 5000, "--endpoint", "h:1"],
        ["interface", "add", "wg1", "--listen-port", "5x", "--endpoint", "h:1"],
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "h:1", "--mtu", "-"],
    ],
)
def test_malformed_numbers_are_one_line_usage_errors(gw, state_dir, args):
    before = dump(state_dir)
    line = one_error_line(gw(*args, code=EXIT_USAGE))
    assert "Invalid value for '--" in line and "--help" in line
    assert dump(state_dir) == before


def test_effective_caps_parses_proc_status():
    status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n"
    assert effective_caps(status) >> CAP_NET_ADMIN & 1
    assert effective_caps("CapEff:\t0000000000000000\n") == 0
    assert effective_caps("Name:\tno caps line\n") == 0


# --- the real CLI without privileges ----------------------------------------------

NOBODY = 65534
# How to drop privileges: become user nobody (the usual case), or, where nobody cannot reach
# the interpreter or this checkout (e.g. both under /root, 0700), stay uid 0 but drop every
# capability: CAP_NET_ADMIN is what wggw needs, and CAP_DAC_OVERRIDE goes with the rest.
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
NO_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]


@dataclass
class Unprivileged:
    prefix: list[str]
    uid: int
    python: str
    env: dict
    top: Path

    def wggw(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [
            *self.prefix,
            "env",
            "-i",
            *(f"{k}={v}" for k, v in self.env.items()),
            self.python,
            "-m",
            "wggw.cli.app",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")


def _choose(top: Path, env: dict) -> Unprivileged:
    """The first way that runs `wggw --version` (see AS_NOBODY/NO_CAPS)."""
    system_python = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    for prefix, uid, python in (
        (AS_NOBODY, NOBODY, sys.executable),
        (AS_NOBODY, NOBODY, system_python),
        (NO_CAPS, 0, sys.executable),
    ):
        way = Unprivileged(prefix, uid, python, env, top)
        if os.path.exists(python) and way.wggw("--version").returncode == 0:
            return way
    pytest.fail("cannot run wggw without privileges here (setpriv as nobody, or without caps)")


@pytest.fixture
def unprivileged():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop privileges")
    top = Path(tempfile.mkdtemp(prefix="wggw-noperm-"))
    top.chmod(0o755)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "WGGW_RUN_DIR": str(top / "run"),
        "PYTHONPATH": f"{ROOT}:{sysconfig.get_paths()['purelib']}",
    }
    try:
        way = _choose(top, env)
        for sub in ("state", "run"):
            (top / sub).mkdir()
            os.chown(top / sub, way.uid, way.uid)
        # A directory this user may not enter: root's own 0700 for nobody; for a root
        # without CAP_DAC_OVERRIDE, one that belongs to someone else.
        (top / "closed").mkdir(mode=0o700)
        os.chown(top / "closed", 0 if way.uid else NOBODY, 0 if way.uid else NOBODY)
        yield way
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize(
    "command",
    [["plan"], ["plan", "--detailed-exitcode"], ["apply"], ["status"], ["down"], ["rotate"]],
)
def test_non_root_is_told_that_root_is_needed(unprivileged, command):
    state = unprivileged.top / "state" / "s"
    assert unprivileged.wggw("--state-dir", str(state), "init").returncode == 0
    result = unprivileged.wggw("--state-dir", str(state), *command)
    assert result.returncode == EXIT_NOPERM, (result.returncode, result.stderr)
    line = one_error_line(result)
    assert "needs root (CAP_NET_ADMIN)" in line
    assert os.listdir(unprivileged.top / "run") == []


def test_non_root_init_in_a_closed_dir_names_the_path(unprivileged):
    target = unprivileged.top / "closed" / "wggw"
    result = unprivileged.wggw("--state-dir", str(target), "init")
    assert result.returncode == EXIT_NOPERM, (result.returncode, result.stderr)
    line = one_error_line(result)
    assert f"permission denied on {target}" in line and "root" in line
    assert not target.exists()


def test_dropping_capabilities_also_gives_77(unprivileged):
    """The capability check, not the uid: root without CAP_NET_ADMIN is refused as well."""
    way = Unprivileged(NO_CAPS, 0, sys.executable, unprivileged.env, unprivileged.top)
    state = unprivileged.top / "caps-state"
    assert way.wggw("--state-dir", str(state), "init").returncode == 0
    result = way.wggw("--state-dir", str(state), "apply")
    assert result.returncode == EXIT_NOPERM, (result.returncode, result.stderr)
    assert "needs root (CAP_NET_ADMIN)" in one_error_line(result)
