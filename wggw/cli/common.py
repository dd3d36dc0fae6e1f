"""Helpers every CLI module shares: the state dir and store from the context, JSON and
time output, shared options, and the one mapping of errors to a line on stderr and an exit
code (codes defined in core/errors.py)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import typer.core

from wggw.cli.plain import one_line, view_lines
from wggw.core.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    ValidationError,
    WggwError,
    permission_error,
    plan_detailed_code,
)
from wggw.core.timefmt import iso  # noqa: F401 - re-exported for the CLI modules

if TYPE_CHECKING:
    from wggw.ops.state import Store  # a type only: the CLI opens stores through ops

DEFAULT_STATE_DIR = Path("/var/lib/wggw")
STATE_DIR_ENV = "WGGW_STATE_DIR"

JSON = typer.Option(False, "--json", help="Machine-readable output (fields in the README).")
BACKEND = typer.Option(
    None,
    "--backend",
    envvar="WGGW_BACKEND",
    metavar="NAME",
    help="WireGuard backend: auto (kernel module, else wireguard-go), kernel, userspace.",
)


def state_dir(ctx: typer.Context) -> Path:
    """The global --state-dir (set by the app callback on the root context)."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return Path(obj.get("state_dir") or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def state_dir_label(ctx: Any) -> str:
    """How the operator gave the state dir, for error messages: the flag, the variable, or
    the default's name."""
    root = ctx.find_root() if ctx is not None else None
    obj = root.obj if root is not None and isinstance(root.obj, dict) else {}
    return obj.get("state_dir_label", "state-dir")


def open_store(ctx: typer.Context) -> Store:
    """The existing store (exit 2 with 'run wggw init' when there is none). Use in `with`.
    The store module is imported here: `--help` and the like do without it."""
    from wggw.ops.state import open_existing

    return open_existing(state_dir(ctx), db_url(ctx))


def db_url(ctx: typer.Context) -> str | None:
    """The global --db (WGGW_DB): a PostgreSQL URL, or None for SQLite in the state dir."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return obj.get("db") or os.environ.get("WGGW_DB") or None


def gateway(ctx: typer.Context) -> str | None:
    """The global --gateway (WGGW_GATEWAY): the fleet gateway this host is, or None."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return obj.get("gateway") or os.environ.get("WGGW_GATEWAY") or None


def echo_json(obj: Any) -> None:
    typer.echo(json_text(obj))


def json_text(obj: Any, depth: int = 0) -> str:
    """JSON for people and machines: an object's fields one per line, a list's elements one per
    line, each element on its line by json's C encoder (which runs only without `indent`:
    indenting 10,000 peers in pure Python took ~0.4 s of `peer list --json`)."""
    pad = "  " * (depth + 1)
    if isinstance(obj, list) and obj:
        inner = [json.dumps(item) for item in obj]
    elif isinstance(obj, dict) and obj and depth == 0:
        inner = [f"{json.dumps(k)}: {json_text(v, depth + 1)}" for k, v in obj.items()]
    else:
        return json.dumps(obj)
    close = "]" if isinstance(obj, list) else "}"
    return (
        ("[" if close == "]" else "{")
        + ",".join(f"\n{pad}{i}" for i in inner)
        + f"\n{pad[:-2]}{close}"
    )


def write_private(path: Path, data: str | bytes, field: str = "output") -> None:
    """Write a file 0600 via temp + rename (ops.state.write_private)."""
    from wggw.ops.state import write_private as write

    write(path, data, field)


def strs(values) -> list[str]:
    return [str(v) for v in values]


def table(rows: list[list[str]], headers: list[str]) -> None:
    """A plain aligned text table (or a note when empty)."""
    if not rows:
        typer.echo("(none)")
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    # One write: an echo per row costs ~30 us, 0.3 s for 10,000 peers.
    typer.echo(
        "\n".join(
            "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [headers, *rows]
        )
    )


def show_view(view: dict, as_json: bool, fmt: Callable[[str, Any], Any] | None = None) -> None:
    """One object: JSON, or aligned `key: value` lines (lists joined, None shown as '-');
    `fmt(key, value)` may rewrite a value for the text form."""
    if as_json:
        echo_json(view)
        return
    for line in view_lines(view, fmt):
        typer.echo(line)


def fail(message: str, code: int) -> None:
    typer.echo(f"wggw: error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def _click_flow() -> tuple[type[BaseException], ...]:
    """Exceptions click/typer use for normal control flow (--help, usage errors, Exit).
    Newer typer vendors click as typer._click, older ones use click itself: take both."""
    classes: list[type[BaseException]] = [typer.Exit, typer.Abort]
    for module in ("click.exceptions", "typer._click.exceptions"):
        # typer has imported the one it uses; importing the other costs ~7 ms
        mod = sys.modules.get(module)
        if mod is None:
            continue
        classes += [getattr(mod, n) for n in ("ClickException", "Exit", "Abort") if hasattr(mod, n)]
    return tuple(classes)


_CLICK_FLOW = _click_flow()


def _click_usage() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """click's UsageError classes, and the NoArgsIsHelpError ones (help, not an error)."""
    usage: list[type[BaseException]] = []
    help_: list[type[BaseException]] = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        mod = sys.modules.get(module)
        if mod is not None:
            usage += [mod.UsageError]
            help_ += [mod.NoArgsIsHelpError] if hasattr(mod, "NoArgsIsHelpError") else []
    return tuple(usage), tuple(help_)


_CLICK_USAGE, _CLICK_HELP = _click_usage()


def _usage_line(e: Any) -> str:
    """click's usage error as one line (click prints the usage, a hint and a box of lines)."""
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{e.format_message()}{hint}"


@contextlib.contextmanager
def mapped_errors(
    ctx: Any = None, code_of: Callable[[int], int] = lambda code: code
) -> Iterator[None]:
    """WggwError -> its exit code; anything unexpected -> exit 1. One line on stderr, no
    traceback (locals could hold secrets) unless WGGW_DEBUG=1. `code_of` may change the
    code of an error (`plan --detailed-exitcode` must not exit 2 for bad input)."""
    try:
        yield
    except _CLICK_HELP:
        raise
    except _CLICK_USAGE as e:
        fail(_usage_line(e), code_of(e.exit_code))  # type: ignore[attr-defined]
    except _CLICK_FLOW:
        raise
    except WggwError as e:
        _debug_traceback()
        if isinstance(e, ValidationError) and e.field == "state-dir":
            label = state_dir_label(ctx)
            fail(f"{label}: {e.problem}", code_of(e.exit_code))
        fail(str(e), code_of(e.exit_code))
    except PermissionError as e:
        _debug_traceback()
        err = permission_error(e)
        fail(str(err), code_of(err.exit_code))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except Exception as e:  # noqa: BLE001 - the last line of defence of the CLI
        _debug_traceback()
        fail(f"unexpected {type(e).__name__}: {e} (set WGGW_DEBUG=1 for a traceback)", EXIT_ERROR)


def _debug_traceback() -> None:
    if os.environ.get("WGGW_DEBUG") == "1":
        traceback.print_exc(file=sys.stderr)


_ARGS = "wggw.args"


def _detailed_plan(ctx: Any) -> bool:
    """Is this `plan --detailed-exitcode` (whose 2 means "changes pending")?"""
    return ctx.invoked_subcommand == "plan" and "--detailed-exitcode" in ctx.meta.get(_ARGS, ())


class WggwGroup(typer.core.TyperGroup):
    """The root group: every (sub)command, including ones registered by other modules,
    runs inside `mapped_errors`, under CliRunner as well as from `main()`; so does the
    parsing of the command line (usage errors are one line too)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = list(args)
        with mapped_errors():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        from wggw.ops.actor import set_command

        set_command(self._command_words(ctx.meta.get(_ARGS, ())))
        with mapped_errors(
            ctx, lambda code: plan_detailed_code(code) if _detailed_plan(ctx) else code
        ):
            return super().invoke(ctx)

    def _command_words(self, args) -> str | None:
        """The verb of this run for its audit records (`wggw peer add`): the command's name,
        and the subcommand's if it is a group. Only names: values may be anything."""
        words = list(args)
        while words and words[0].startswith("-"):
            flag = words.pop(0)
            if flag in ("--state-dir", "--db", "--gateway") and words:
                words.pop(0)  # its value
        if not words or words[0] not in self.commands:
            return None
        out = ["wggw", words[0]]
        subs = getattr(self.commands[words[0]], "commands", None) or {}
        if len(words) > 1 and words[1] in subs:
            out.append(words[1])
        return " ".join(out)
