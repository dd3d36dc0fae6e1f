"""The quick path of a plain `wggw [--state-dir DIR] apply [-q|--quiet]`: the same operation
(ops/dataplane.apply), output, errors and exit codes as the typer command, without importing
typer, click and pydantic (about 0.15 s of CPU at each start, paid again while wireguard-go
sets up thousands of peers on the other core).

Only that plain form takes it; any other option (`--backend`, `-v`, `--db`, `--help`, ...)
goes to the typer app (cli/app.py), which parses, checks and documents it. The backend comes
from WGGW_BACKEND, the store from WGGW_DB and the gateway from WGGW_GATEWAY, as the typer command
reads them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from wggw.cli.quick import resolve_state_dir, split_state_dir

NOTHING = "Nothing to do: the host matches the store."  # as cli/dataplane.py prints it
KEPT: list[Any] = []  # the last apply's result, alive until `exit_now`
THREADS_TIMEOUT = 10.0  # seconds to wait for each non-daemon thread at exit (bounded)


class Command(NamedTuple):
    quiet: bool
    state_dir: Path
    state_dir_label: str


def parse(argv: list[str]) -> Command | None:
    """`[--state-dir DIR|--state-dir=DIR] apply [-q|--quiet]`, or None (the typer app's job)."""
    split = split_state_dir(argv)
    if split is None:
        return None
    state_dir, args = split
    if not args or args[0] != "apply" or state_dir == "":
        return None
    rest = args[1:]
    if rest not in ([], ["-q"], ["--quiet"]):
        return None
    return Command(bool(rest), *resolve_state_dir(state_dir))


def run(cmd: Command) -> int:
    """Carry out `cmd` as the typer `apply` would; the exit code."""
    from wggw.cli import plain
    from wggw.cli.quick import mapped

    try:
        return _run(cmd)
    except BaseException as e:  # noqa: BLE001 - mapped exactly as cli/common.mapped_errors
        code, message = mapped(e, cmd.state_dir_label)
        print(f"wggw: error: {plain.one_line(message)}", file=sys.stderr, flush=True)
        return code


def _run(cmd: Command) -> int:
    from wggw.ops import dataplane
    from wggw.ops.actor import set_command
    from wggw.ops.state import open_existing

    set_command("wggw apply")
    echo = None if cmd.quiet else _echo
    backend = os.environ.get("WGGW_BACKEND") or None
    with open_existing(cmd.state_dir, os.environ.get("WGGW_DB") or None) as store:
        # WGGW_GATEWAY as the typer command reads it (cli/common.gateway): a fleet gateway's
        # host applies its own part
        gateway = os.environ.get("WGGW_GATEWAY") or None
        report, result = dataplane.apply(store, backend, echo, gateway=gateway)
    KEPT.append(result)  # freed by the OS at exit (see `exit_now`)
    if not cmd.quiet:
        for line in report.lines():
            _echo(line)
        _echo(f"{len(result.changes)} change(s) applied." if result.changes else NOTHING)
    return 0


def exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown: what a converge of 10,000 peers leaves
    (~10^6 objects, kept in KEPT) would be freed one by one (~50 ms); the OS takes the
    memory back at once. The store is closed by now; what the interpreter's exit would
    still do is done here: wait for non-daemon threads (e.g. backends/announce.py's
    repeated announcements), then flush the standard streams."""
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(THREADS_TIMEOUT)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def _echo(line: str) -> None:
    print(line, flush=True)
