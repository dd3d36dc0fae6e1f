"""First-day friction, each point with a test: help without Python types, shell completion,
peers in words (status, private key), plan lines as the backend carries them out, the
state-dir error naming what the operator gave, exit codes in one place, README's two
commands without sudo, and a package build without setuptools warnings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner
from wggwtest import ROOT

PY_TYPE = re.compile(r"<(?:str|int|bool|float|path|list\[[^\]]*\]|[A-Za-z_]+\[[^\]]*\])>")


def _all_command_paths() -> list[list[str]]:
    from typer.main import get_command

    from wggw.cli.app import app

    paths = [[]]
    for name, cmd in get_command(app).commands.items():
        paths.append([name])
        paths += [[name, sub] for sub in getattr(cmd, "commands", {})]
    return paths


def test_help_shows_no_python_types():
    from wggw.cli.app import app

    runner = CliRunner()
    paths = _all_command_paths()
    assert len(paths) > 20
    for path in paths:
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, path
        assert not PY_TYPE.search(res.output), (path, PY_TYPE.search(res.output).group(0))
    tenant_help = runner.invoke(app, ["tenant", "add", "--help"]).output
    assert "--pool CIDR" in tenant_help and "--egress IP" in tenant_help


def test_shell_completion_is_on():
    from wggw.cli.app import app

    assert "--install-completion" in CliRunner().invoke(app, ["--help"]).output
    env = {
        **os.environ,
        "_WGGW_COMPLETE": "complete_bash",
        "COMP_WORDS": "wggw peer a",
        "COMP_CWORD": "2",
        "PYTHONPATH": str(ROOT),
    }
    code = "import sys; sys.argv[0] = 'wggw'; from wggw.cli.app import main; main()"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.stdout.split() == ["add"], (res.stdout, res.stderr[-500:])


def _peer(**kw) -> dict:
    base = {
        "tenant": "acme",
        "name": "alice",
        "interface": "wg0",
        "endpoint": None,
        "configured": True,
        "latest_handshake": None,
        "active": False,
        "rx_bytes": 0,
        "tx_bytes": 0,
    }
    return {**base, **kw}


@pytest.mark.parametrize(
    "peer, state",
    [
        (_peer(), "no handshake"),
        (_peer(configured=False), "MISSING"),
        (_peer(latest_handshake="2026-01-01T00:00:00Z", active=True), "up"),
        (_peer(latest_handshake="2026-01-01T00:00:00Z", active=False), "idle"),
    ],
)
def test_status_says_up_only_after_a_handshake(peer, state, capsys):
    from wggw.cli.dataplane import print_status

    print_status({"peers": [peer], "tenants": [], "drift": [], "paths": []})
    row = capsys.readouterr().out.splitlines()[1]
    assert row.split("  ")[-1].strip() == state


def test_peer_text_words_the_private_key_for_people(gw):
    text = gw("peer", "add", "acme/alice").output
    assert "has_private_key" not in text and "True" not in text
    assert re.search(r"^private key:\s+held by wggw", text, re.M)
    own = gw("peer", "add", "acme/bob", "--public-key", "x" * 43 + "=").output
    assert re.search(r"^private key:\s+kept by the client only", own, re.M)
    assert '"has_private_key": true' in gw("peer", "show", "acme/alice", "--json").output


class _Wg:
    def __init__(self, kind: str):
        self.kind = kind


def test_plan_lines_say_what_the_backend_does():
    from wggw.backends.system import RealSystem
    from wggw.core.plan import CreateDevice, DeleteDevice
    from wggw.ops import converge

    userspace, kernel = RealSystem(_Wg("userspace")), RealSystem(_Wg("kernel"))
    assert converge.line(userspace, CreateDevice("wg0")) == "[#] wireguard-go wg0"
    assert "type wireguard" not in converge.line(userspace, DeleteDevice("wg0"))
    assert converge.line(kernel, CreateDevice("wg0")) == "[#] ip link add wg0 type wireguard"


def test_state_dir_error_names_what_was_given(tmp_path, monkeypatch):
    from wggw.cli.app import app

    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.delenv("WGGW_STATE_DIR", raising=False)
    res = CliRunner().invoke(app, ["--state-dir", str(afile), "init"])
    assert res.exit_code == 2 and res.stderr.startswith("wggw: error: --state-dir: "), res.stderr
    assert "WGGW_STATE_DIR" not in res.stderr
    res = CliRunner().invoke(app, ["init"], env={"WGGW_STATE_DIR": str(afile)})
    assert res.exit_code == 2 and res.stderr.startswith("wggw: error: WGGW_STATE_DIR: "), res.stderr
    res = CliRunner().invoke(app, ["--state-dir", str(afile / "below"), "init"])
    assert res.exit_code == 2 and res.stderr.startswith("wggw: error: --state-dir: "), res.stderr
    assert "unexpected" not in res.stderr


def test_every_exit_code_is_defined_once_and_documented():
    from wggw.core import errors

    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"### Exit codes\n\n\| code.*?\n\n", readme, re.S).group(0)
    documented = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == codes
    # No module of the CLI defines its own code: they all come from core/errors.py.
    for path in (ROOT / "wggw").rglob("*.py"):
        if path.name != "errors.py":
            assert not re.search(r"^EXIT_\w+ = \d+", path.read_text(), re.M), path


def test_two_commands_need_no_sudo():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split()[0] for line in block.splitlines() if line and not line.startswith(" ")]
    assert commands == ["scripts/demo", "scripts/test"]
    for script in ["scripts/demo", "scripts/test", "scripts/install-deps"]:
        text = (ROOT / script).read_text()
        assert os.access(ROOT / script, os.X_OK) and not re.search(r"\bsudo\b", text), script
    deps = (ROOT / "scripts/install-deps").read_text()
    for package in (
        "wireguard-go",
        "wireguard-tools",
        "nftables",
        "iproute2",
        "iptables",
        "procps",
        "python3-venv",
    ):
        assert package in deps, package


def test_pyproject_license_is_an_spdx_string():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    requires = project["build-system"]["requires"]
    assert any(
        re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77 for r in requires
    )
    assert not any("typer" in d and "<" in d for d in project["project"]["dependencies"])


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {},
        0,
        "x",
        None,
        [{"a": 1, "b": [1, 2]}, {"a": None}],
        {
            "peers": [{"name": "alice", "addresses": ["10.0.0.2/32"]}],
            "tenants": [],
            "drift": ["x"],
            "nested": {"k": [1, {"z": "é"}]},
        },
    ],
)
def test_json_output_parses_back_and_puts_one_element_per_line(obj):
    from wggw.cli.common import json_text

    text = json_text(obj)
    assert json.loads(text) == obj
    if isinstance(obj, list) and obj:
        assert len(text.splitlines()) == len(obj) + 2


def test_peer_list_json_is_one_peer_per_line(gw):
    gw("peer", "add", "acme/p{1..5}")
    text = gw("peer", "list", "--json").output
    assert [p["name"] for p in json.loads(text)] == [f"p{i}" for i in range(1, 6)]
    assert len(text.strip().splitlines()) == 7
