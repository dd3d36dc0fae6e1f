"""templates/wggw-agent.service passes `systemd-analyze verify` (systemd need not be PID 1 for
that), and keeps the settings the agent's promises rest on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "templates" / "wggw-agent.service"


def _verify(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze missing (Debian package systemd; scripts/install-deps)")
        pytest.skip("systemd-analyze missing (Debian package systemd)")
    # verify wants ExecStart's binary to exist: point it at one that does on any host.
    unit = tmp_path / "wggw-agent.service"
    unit.write_text(text.replace("/usr/local/bin/wggw ", "/bin/true "))
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


def test_unit_verifies(tmp_path: Path) -> None:
    res = _verify(tmp_path, UNIT.read_text())
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def test_a_broken_unit_does_not(tmp_path: Path) -> None:
    res = _verify(tmp_path, UNIT.read_text().replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in res.stderr


def test_unit_keeps_the_agents_promises() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "KillMode=process",
        "RestartPreventExitStatus=75",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wggw /run/wggw /run/wireguard",
        "RuntimeDirectoryPreserve=yes",
    ):
        assert f"\n{line}\n" in text, line
    assert "\nWatchdogSec=" in text and " agent " in text
