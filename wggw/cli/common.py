"""Helpers every CLI module shares: the state dir and store from the context, JSON and
time output, and the one mapping of errors to a line on stderr and an exit code."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
import typer.core

from wggw.core.timefmt import iso  # noqa: F401 - re-exported for the CLI modules
from wggw.core.errors import EXIT_ERROR, ValidationError, WggwError
from wggw.fsutil import atomic_write
from wggw.store.sqlite import Store, open_store as _open_store
from wggw.cli import lightparams

DEFAULT_STATE_DIR = Path("/var/lib/wggw")
lightparams.install()  # before any command runs: plain parameters skip pydantic (see there)


def state_dir(ctx: typer.Context) -> Path:
    """The global --state-dir (set by the app callback on the root context)."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return Path(obj.get("state_dir") or os.environ.get("WGGW_STATE_DIR") or DEFAULT_STATE_DIR)


def open_store(ctx: typer.Context) -> Store:
    """The existing store (exit 2 with 'run wggw init' when there is none). Use in `with`."""
    return _open_store(state_dir(ctx))


def echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=False))


def write_private(path: Path, data: str | bytes, field: str = "output") -> None:
    """Write a file 0600 via temp + rename; an unwritable path is a usage error (exit 2)."""
    try:
        atomic_write(path, data)
    except OSError as e:
        raise ValidationError(field, f"cannot write {path}: {e.strerror}") from None


def strs(values) -> list[str]:
    return [str(v) for v in values]


def table(rows: list[list[str]], headers: list[str]) -> None:
    """A plain aligned text table (or a note when empty)."""
    if not rows:
        typer.echo("(none)")
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, *rows]:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def show_view(view: dict, as_json: bool, fmt: Optional[Callable[[str, Any], Any]] = None) -> None:
    """One object: JSON, or aligned `key: value` lines (lists joined, None shown as '-');
    `fmt(key, value)` may rewrite a value for the text form."""
    if as_json:
        echo_json(view)
        return
    width = max(map(len, view)) + 2
    for key, value in view.items():
        value = fmt(key, value) if fmt else value
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        typer.echo(f"{key + ':':{width}} {'-' if value in (None, '') else value}")


def fail(message: str, code: int) -> None:
    typer.echo(f"wggw: error: {message}", err=True)
    raise typer.Exit(code)


def _click_flow() -> tuple[type[BaseException], ...]:
    """Exceptions click/typer use for normal control flow (--help, usage errors, Exit).
    Newer typer vendors click as typer._click, older ones use click itself: take both."""
    classes: list[type[BaseException]] = [typer.Exit, typer.Abort]
    for module in ("click.exceptions", "typer._click.exceptions"):
        mod = sys.modules.get(module)  # typer has imported the one it uses; importing the other costs ~7 ms
        if mod is None:
            continue
        classes += [getattr(mod, n) for n in ("ClickException", "Exit", "Abort") if hasattr(mod, n)]
    return tuple(classes)


_CLICK_FLOW = _click_flow()


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """WggwError -> its exit code; anything unexpected -> exit 1. One line on stderr, no
    traceback (locals could hold secrets) unless WGGW_DEBUG=1."""
    try:
        yield
    except _CLICK_FLOW:
        raise
    except WggwError as e:
        _debug_traceback()
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as e:  # noqa: BLE001 - the last line of defence of the CLI
        _debug_traceback()
        fail(f"unexpected {type(e).__name__}: {e} (set WGGW_DEBUG=1 for a traceback)", EXIT_ERROR)


def _debug_traceback() -> None:
    if os.environ.get("WGGW_DEBUG") == "1":
        traceback.print_exc(file=sys.stderr)


class WggwGroup(typer.core.TyperGroup):
    """The root group: every (sub)command, including ones registered by other modules,
    runs inside `mapped_errors`, under CliRunner as well as from `main()`."""

    def invoke(self, ctx: Any) -> Any:
        with mapped_errors():
            return super().invoke(ctx)
