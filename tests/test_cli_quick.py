"""Which command lines take the quick path of a one-peer change (cli/quick.py): only the plain
`[--state-dir DIR] peer add|remove REF --apply`; everything else goes to the typer app, which
parses, checks and documents it. A form taken wrongly would skip typer's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from wggw.cli import quick


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
