"""The quick path of `wggw peer add|remove TENANT/PEER --apply` while a `wggw agent` runs:
the same operation and the same output as the typer command, without importing typer,
click or the kernel backends (which would cost more than the whole change through the agent).

Only the plain form takes it (the global --state-dir, one ref, --apply and nothing else);
every other command line, and every command while no agent socket exists, goes to the typer
app (cli/app.py) unchanged. The agent may still turn out to be gone (a stale socket): the
change is then applied here, as without an agent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

DEFAULT_STATE_DIR = Path("/var/lib/wggw")
STATE_DIR_ENV = "WGGW_STATE_DIR"

Echo = Callable[[str], None]


class Command(NamedTuple):
    verb: str  # "add" or "remove"
    ref: str
    state_dir: Path
    state_dir_label: str


def parse(argv: list[str]) -> Command | None:
    """`[--state-dir DIR] peer add|remove REF --apply`, or None (the typer app's job)."""
    split = split_state_dir(argv)
    if split is None:
        return None
    state_dir, args = split
    if len(args) != 4 or args[:2] not in (["peer", "add"], ["peer", "remove"]):
        return None
    rest = args[2:]
    if "--apply" not in rest:
        return None
    rest.remove("--apply")
    ref = rest[0]
    if state_dir == "" or not ref or ref.startswith("-") or "{" in ref:
        return None
    return Command(args[1], ref, *resolve_state_dir(state_dir))


def split_state_dir(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """A leading `--state-dir DIR` / `--state-dir=DIR` and the words after it (DIR None: not
    given), or None for a form only the typer app parses (a missing value)."""
    args = list(argv)
    if not (args and args[0].startswith("--state-dir")):
        return None, args
    head = args.pop(0)
    if head.startswith("--state-dir="):
        return head.partition("=")[2], args
    if head == "--state-dir" and args:
        return args.pop(0), args
    return None


def resolve_state_dir(state_dir: str | None) -> tuple[Path, str]:
    """The state directory and how messages name it, as the typer app resolves it: the option,
    else WGGW_STATE_DIR, else the default."""
    if state_dir is not None:
        return Path(state_dir), "--state-dir"
    env = os.environ.get(STATE_DIR_ENV)
    return (Path(env), STATE_DIR_ENV) if env else (DEFAULT_STATE_DIR, "state-dir")


def agent_listens() -> bool:
    from wggw.ops.agentclient import socket_path

    try:
        return socket_path().exists()
    except OSError:
        return False


def apply_peer(store, backend: str | None, tenant: str, peer, keys: set[str], echo: Echo):
    """`--apply` of one peer: handed to a running `wggw agent` if there is one, else
    ops.dataplane.apply_peer. The caller holds the store lock. A tenant placed on named
    gateways of a fleet is applied there by their agents, not here: the gateways to wait
    for are returned (ops/fleetwait.Target), for the caller to wait on without the lock."""
    from wggw.ops import fleetwait

    target = fleetwait.peer_target(store, tenant)
    if target is not None:
        return target
    from wggw.ops.agentclient import apply_peer_via_agent

    if apply_peer_via_agent(store, tenant, peer.name if peer else None, keys, echo):
        return None  # a running `wggw agent` applied it (we hold the lock for it meanwhile)
    from wggw.ops import dataplane

    changes = dataplane.apply_peer(store, backend, tenant, peer, keys, echo)
    echo(
        f"{len(changes)} change(s) applied."
        if changes
        else "Nothing to do: the host matches the store."
    )
    return None


def run(cmd: Command) -> int:
    """Carry out `cmd` as `peer add/remove --apply` would; the exit code."""
    from wggw.cli import plain

    try:
        return _run(cmd, lambda line: print(line, flush=True))
    except BaseException as e:  # noqa: BLE001 - mapped exactly as cli/common.mapped_errors
        code, message = mapped(e, cmd.state_dir_label)
        print(f"wggw: error: {plain.one_line(message)}", file=sys.stderr, flush=True)
        return code


def _run(cmd: Command, echo: Echo) -> int:
    from wggw.cli import plain
    from wggw.ops import fleetwait, objects
    from wggw.ops.state import open_existing

    fleetwait.timeout_from_env()  # a bad WGGW_FLEET_TIMEOUT: refused before any write
    backend = os.environ.get("WGGW_BACKEND") or None
    with open_existing(cmd.state_dir) as store:
        with store.locked():
            if cmd.verb == "add":
                peer = objects.add_peer(store, cmd.ref)
                target = apply_peer(store, backend, peer.tenant, peer, {peer.public_key}, echo)
            else:
                gone = objects.remove_peer(store, cmd.ref)
                echo(f"removed peer {cmd.ref}")
                keys = {gone.public_key} | ({gone.retiring.public_key} if gone.retiring else set())
                target = apply_peer(store, backend, gone.tenant, None, keys, echo)
        if target is not None:
            fleetwait.wait_for_peer(store, target, echo)
        if cmd.verb != "add":
            return 0
    echo("\n".join(plain.peer_lines(plain.peer_json(peer))))
    if peer.private_key is not None:
        echo(f"client config: wggw peer config {peer.ref} [--output FILE] [--qr]")
    return 0


def mapped(e: BaseException, state_dir_label: str) -> tuple[int, str]:
    """(exit code, message) of an error, as cli/common.mapped_errors maps it."""
    from wggw.core.errors import (
        EXIT_ERROR,
        EXIT_INTERRUPTED,
        ValidationError,
        WggwError,
        permission_error,
    )

    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if not isinstance(e, Exception):
        raise e  # SystemExit and the like: not errors of the command
    if os.environ.get("WGGW_DEBUG") == "1":
        import traceback

        traceback.print_exc(file=sys.stderr)
    if isinstance(e, ValidationError) and e.field == "state-dir":
        return e.exit_code, f"{state_dir_label}: {e.problem}"
    if isinstance(e, WggwError):
        return e.exit_code, str(e)
    if isinstance(e, PermissionError):
        err = permission_error(e)
        return err.exit_code, str(err)
    return EXIT_ERROR, f"unexpected {type(e).__name__}: {e} (set WGGW_DEBUG=1 for a traceback)"
