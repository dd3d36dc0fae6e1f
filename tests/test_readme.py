"""The README's quick start works as written (up to the data-plane commands), and the CLI
reference names every command the app has."""

from __future__ import annotations

import re
import shlex

from wggwtest import ROOT

README = (ROOT / "README.md").read_text()


def _quick_start() -> list[list[str]]:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("wggw ")]


def test_quick_start_as_written(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = _quick_start()
    assert commands[0] == ["init"] and ["apply"] in commands
    for args in commands:
        if args[0] in ("plan", "apply"):
            continue  # the data plane has its own tests (netns tier)
        cli(*args)
    assert (tmp_path / "alice.conf").read_text().count("PrivateKey = ") == 1


def test_reference_lists_every_command():
    from typer.main import get_command

    from wggw.cli.app import app

    root = get_command(app)
    for name, cmd in root.commands.items():
        subs = getattr(cmd, "commands", None)
        for full in [f"wggw {name} {s}" for s in subs] if subs else [f"wggw {name}"]:
            assert full in README or f"`{full.split()[-1]}" in README, full
