"""The built wheel carries the templates, and the installed package (outside the checkout)
runs the quick start: init, interface, tenant, peer, peer config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from wggwtest import ROOT


def test_wheel_ships_templates_and_renders(tmp_path):
    # An isolated build, as a plain `pip install .` does (pip fetches setuptools if needed).
    # From a copy: setuptools builds in-tree (build/, *.egg-info) and the checkout stays clean.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("wggw", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("wggw-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "wggw/templates/client.conf.j2" in names and "wggw/templates/gateway.conf.j2" in names
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    state = tmp_path / "state"

    def wggw(*args: str) -> str:
        res = subprocess.run(
            [sys.executable, "-m", "wggw.cli.app", "--state-dir", str(state), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert res.returncode == 0, (args, res.stderr)
        return res.stdout

    wggw("init")
    wggw("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:51820")
    wggw("tenant", "add", "acme", "--pool", "10.10.0.0/24", "--egress", "203.0.113.10")
    wggw("peer", "add", "acme/alice")
    assert "AllowedIPs = 0.0.0.0/0, ::/0" in wggw("peer", "config", "acme/alice")
    where = subprocess.run(
        [sys.executable, "-c", "import wggw.ops.render as r; print(r.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target))
