"""Which command lines take a quick path: of a one-peer change (cli/quick.py) only the plain
`[--state-dir DIR] peer add|remove REF --apply`, of `apply` (cli/quickapply.py) only the plain
`[--state-dir DIR] apply [-q]`; everything else goes to the typer app, which parses, checks
and documents it. A form taken wrongly would skip typer's checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wggw.cli import quick, quickapply


@pytest.mark.parametrize(
    ("argv", "verb", "ref", "state_dir", "label"),
    [
        (["peer", "add", "acme/a", "--apply"], "add", "acme/a", "/env", "WGGW_STATE_DIR"),
        (["peer", "remove", "--apply", "acme/a"], "remove", "acme/a", "/env", "WGGW_STATE_DIR"),
        (["--state-dir", "/s", "peer", "add", "acme/a", "--apply"], "add", "acme/a", "/s", None),
        (["--state-dir=/s", "peer", "add", "acme/a", "--apply"], "add", "acme/a", "/s", None),
    ],
)
def test_plain_forms_go_quick(monkeypatch, argv, verb, ref, state_dir, label) -> None:
    monkeypatch.setenv("WGGW_STATE_DIR", "/env")
    cmd = quick.parse(argv)
    assert cmd is not None
    assert (cmd.verb, cmd.ref, cmd.state_dir) == (verb, ref, Path(state_dir))
    assert cmd.state_dir_label == (label or "--state-dir")


def test_default_state_dir(monkeypatch) -> None:
    monkeypatch.delenv("WGGW_STATE_DIR", raising=False)
    cmd = quick.parse(["peer", "add", "acme/a", "--apply"])
    assert cmd is not None and cmd.state_dir == Path("/var/lib/wggw")
    assert cmd.state_dir_label == "state-dir"


@pytest.mark.parametrize(
    "argv",
    [
        ["peer", "add", "acme/a"],  # no --apply: the typer command
        ["peer", "add", "acme/a", "--apply", "--json"],
        ["peer", "add", "acme/a", "--apply", "--keepalive", "25"],
        ["peer", "add", "acme/p{1..3}", "--apply"],  # a range
        ["peer", "add", "acme/a", "acme/b", "--apply"],
        ["peer", "add", "--help", "--apply"],
        ["peer", "add", "--", "--apply"],
        ["peer", "add", "--apply", "--apply"],
        ["peer", "show", "acme/a", "--apply"],
        ["tenant", "add", "acme/a", "--apply"],
        ["--state-dir", "peer", "add", "acme/a", "--apply"],
        ["--state-dir="],
        ["--state-dir=", "peer", "add", "acme/a", "--apply"],
        ["--version"],
        [],
    ],
)
def test_everything_else_goes_to_typer(argv) -> None:
    assert quick.parse(argv) is None


@pytest.mark.parametrize(
    ("argv", "quiet", "state_dir", "label"),
    [
        (["apply"], False, "/env", "WGGW_STATE_DIR"),
        (["apply", "-q"], True, "/env", "WGGW_STATE_DIR"),
        (["--state-dir", "/s", "apply", "--quiet"], True, "/s", "--state-dir"),
        (["--state-dir=/s", "apply"], False, "/s", "--state-dir"),
    ],
)
def test_plain_apply_goes_quick(monkeypatch, argv, quiet, state_dir, label) -> None:
    monkeypatch.setenv("WGGW_STATE_DIR", "/env")
    cmd = quickapply.parse(argv)
    assert cmd == quickapply.Command(quiet, Path(state_dir), label)


@pytest.mark.parametrize(
    "argv",
    [
        ["apply", "-v"],  # verbose: the typer command
        ["apply", "--verbose"],
        ["apply", "--backend", "userspace"],
        ["apply", "--help"],
        ["apply", "-q", "-q"],
        ["apply", "-qv"],
        ["apply", "extra"],
        ["--db", "postgresql:///x", "apply"],
        ["--gateway", "gw1", "apply"],
        ["--state-dir", "apply"],
        ["--state-dir=", "apply"],
        ["plan"],
        ["status"],
        ["peer", "add", "acme/a", "--apply"],
        [],
    ],
)
def test_everything_but_plain_apply_goes_to_typer(argv) -> None:
    assert quickapply.parse(argv) is None


@pytest.mark.parametrize("args", [["--state-dir", "{missing}", "apply"], ["apply", "-q"]])
def test_quick_apply_fails_like_the_typer_command(tmp_path, args) -> None:
    """Bad input on the quick path: the typer command's one line and exit code (no store
    here, or a state dir given by the environment that is not a directory)."""
    argv = [a.format(missing=tmp_path / "nothing") for a in args]
    env = {**os.environ, "WGGW_STATE_DIR": str(tmp_path / "file")}
    (tmp_path / "file").write_text("")
    env.pop("WGGW_DB", None)
    runs = [
        subprocess.run(
            [sys.executable, "-m", module, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for module in ("wggw.cli.entry", "wggw.cli.app")
    ]
    quick, typer = runs
    assert quick.returncode == typer.returncode != 0
    assert quick.stderr == typer.stderr
    assert quick.stderr.startswith("wggw: error: ") and quick.stderr.count("\n") == 1
    assert quick.stdout == typer.stdout == ""


def test_quick_exit_waits_for_non_daemon_threads(tmp_path) -> None:
    """`exit_now` skips the interpreter's teardown, not what it waits for: a non-daemon
    thread (announce's repeated ARP) still finishes, and buffered output is flushed."""
    mark = tmp_path / "done"
    code = (
        "import threading, time\n"
        "from wggw.cli import quickapply\n"
        f"t = threading.Timer(0.3, lambda: open({str(mark)!r}, 'w').write('x'))\n"
        "t.start()\n"
        "print('bye', end='')\n"
        "quickapply.exit_now(3)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 3 and res.stdout == "bye"
    assert mark.read_text() == "x"


def test_quick_apply_reads_the_gateway_like_the_typer_command(tmp_path) -> None:
    """WGGW_GATEWAY on the quick path: the fleet gateway this host is, as for the typer
    command (an unknown one is refused by both alike, before anything is touched)."""
    env = {**os.environ, "WGGW_GATEWAY": "gw9", "WGGW_RUN_DIR": str(tmp_path / "run")}
    env.pop("WGGW_DB", None)
    state = str(tmp_path / "state")
    subprocess.run([sys.executable, "-m", "wggw.cli.app", "--state-dir", state, "init"],
                   env=env, check=True, capture_output=True, timeout=60)  # fmt: skip
    runs = [
        subprocess.run(
            [sys.executable, "-m", module, "--state-dir", state, "apply"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        for module in ("wggw.cli.entry", "wggw.cli.app")
    ]
    quick, typer = runs
    assert (quick.returncode, quick.stderr) == (typer.returncode, typer.stderr)
    if os.geteuid() == 0:  # else both stop at "needs root" (exit 77) first
        assert quick.returncode == 2 and "no gateway named 'gw9'" in quick.stderr
