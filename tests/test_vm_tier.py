"""The kernel tier's pieces that can be checked without root or a VM: its scripts parse, and the
`kernel_tier` marker is registered and still selects what the tier must prove on the kernel
module (egress per tenant, fail-closed, live sessions)."""

from __future__ import annotations

import subprocess
import sys

from wggwtest import ROOT

SCRIPTS = [
    ROOT / "scripts" / "vm-test",
    ROOT / "tests" / "vm" / "init.sh",
    ROOT / "tests" / "vm" / "guest.sh",
]


def test_scripts_parse_and_vm_test_has_help():
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(script)], check=True)
    res = subprocess.run([str(SCRIPTS[0]), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "kernel_tier" in res.stdout


def test_kernel_tier_selects_egress_fail_closed_and_live_sessions():
    markers = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "@pytest.mark.kernel_tier:" in markers  # registered in pyproject.toml
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "kernel_tier",
            "tests",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    selected = [line for line in res.stdout.splitlines() if "::" in line]
    for needed in ("own_egress", "fails_closed", "live_sessions"):
        assert any(needed in name for name in selected), (needed, selected)
