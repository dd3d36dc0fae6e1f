"""The `wggw` command: the root Typer app, the global --state-dir, the nouns, and `main()`."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import typer

from wggw import __version__
from wggw.cli import (
    agent,
    audit,
    common,
    dataplane,
    gateway,
    interface,
    peer,
    rotate,
    store,
    tenant,
    transfer,
)

app = typer.Typer(
    cls=common.WggwGroup,
    pretty_exceptions_enable=False,  # one line per error (common.mapped_errors)
    pretty_exceptions_show_locals=False,  # locals may hold secrets
    rich_markup_mode=None,  # plain help: no rich import on every start
    no_args_is_help=True,
    help="Multi-tenant WireGuard egress gateway manager.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wggw {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    state_dir: Path = typer.Option(
        common.DEFAULT_STATE_DIR,
        "--state-dir",
        envvar=common.STATE_DIR_ENV,
        metavar="DIR",
        help="Where the store and lock live.",
    ),
    db: str = typer.Option(
        None,
        "--db",
        envvar="WGGW_DB",
        metavar="URL",
        help="PostgreSQL store (postgresql://...; TLS via sslmode=) instead of SQLite in "
        "--state-dir. Keep passwords in ~/.pgpass or PGPASSWORD, not in the URL.",
    ),
    gateway_name: str = typer.Option(
        None,
        "--gateway",
        envvar="WGGW_GATEWAY",
        metavar="NAME",
        help="This host is gateway NAME of a fleet: plan, apply, status and rotate act on "
        "its part of the store only.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    source = ctx.get_parameter_source("state_dir")
    label = {"COMMANDLINE": "--state-dir", "ENVIRONMENT": common.STATE_DIR_ENV}.get(
        getattr(source, "name", ""), "state-dir"
    )
    if getattr(ctx.get_parameter_source("db"), "name", "") == "COMMANDLINE":
        from wggw.ops.state import refuse_password_in_argv

        refuse_password_in_argv(db, "--db")
    ctx.obj = {"state_dir": state_dir, "state_dir_label": label, "db": db}
    ctx.obj["gateway"] = gateway_name


@app.command("init")
def init_cmd(ctx: typer.Context) -> None:
    """Create the store (state dir 0700, files 0600). Running it again changes nothing."""
    from wggw.ops.state import init_store

    created, where = init_store(common.state_dir(ctx), common.db_url(ctx))
    if created:
        typer.echo(f"initialised wggw store in {where}")
    else:
        typer.echo(f"wggw store in {where} already exists; nothing changed")


app.add_typer(interface.app, name="interface", help="WireGuard interfaces clients connect to.")
app.add_typer(
    tenant.app, name="tenant", help="Tenants: address pools leaving through their own egress IPs."
)
app.add_typer(peer.app, name="peer", help="Peers (clients) of a tenant.")
app.add_typer(gateway.app, name="gateway", help="Gateways of a fleet sharing one store.")
app.add_typer(transfer.import_app, name="import", help="Bring peers in from other tools.")
app.add_typer(
    transfer.export_app, name="export", help="Write wggw's state in other tools' formats."
)
app.add_typer(dataplane.app)  # plan, apply, status, down: top-level verbs
app.add_typer(rotate.app)  # rotate
app.add_typer(agent.app)  # agent
app.add_typer(store.app, name="store", help="The store itself: move it to PostgreSQL, rekey.")
app.add_typer(audit.app, name="audit", help="The audit log: who changed what; verify its chain.")


def main() -> None:
    """Console entry point. Errors are mapped inside the group; this is the safety net for
    anything raised outside a command (e.g. while parsing)."""
    # One command is a short-lived process whose state (10,000 peers = ~200,000 objects) has
    # no reference cycles: the cyclic collector would only re-scan it again and again
    # (~0.1 s of `plan` at 10,000 peers). Memory is given back at exit.
    gc.disable()
    try:
        app(prog_name="wggw")
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        if os.environ.get("WGGW_DEBUG") == "1":
            raise
        print(f"wggw: error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
