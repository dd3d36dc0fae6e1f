"""`wggw store ...`: move the store to PostgreSQL, rotate the key of its secrets."""

from __future__ import annotations

import typer

from wggw.cli.common import JSON, db_url, echo_json, show_view, state_dir

app = typer.Typer(no_args_is_help=True)


@app.command("migrate")
def migrate_cmd(
    ctx: typer.Context,
    to: str = typer.Option(
        ...,
        "--to",
        metavar="URL",
        help="An empty PostgreSQL database (postgresql://...); keep its password in "
        "~/.pgpass or PGPASSWORD.",
    ),
    as_json: bool = JSON,
) -> None:
    """Copy the SQLite store of --state-dir into an empty PostgreSQL database in one
    transaction, then verify it (counts, key fingerprints). Secrets arrive sealed with
    WGGW_KEY_FILE's key (created when that file does not exist). The SQLite store is left
    as it was: point the fleet at the database with --db / WGGW_DB afterwards."""
    from wggw.ops.state import refuse_password_in_argv
    from wggw.ops.storeadmin import migrate_to

    refuse_password_in_argv(to, "--to")
    report = migrate_to(state_dir(ctx), to)
    if as_json:
        echo_json(report)
        return
    typer.echo(f"copied and verified into {report['target']}")
    show_view({k: v for k, v in report.items() if k != "target"}, False)


@app.command("rekey")
def rekey_cmd(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Re-seal every private key and PSK with a fresh key (one transaction), then replace
    WGGW_KEY_FILE atomically. With a plain SQLite store and WGGW_KEY_FILE naming a file that
    does not exist yet: encrypt the store's secrets. Copy the new key file to every host."""
    from wggw.ops.storeadmin import rekey_store

    report = rekey_store(state_dir(ctx), db_url(ctx))
    if as_json:
        echo_json(report)
        return
    typer.echo(f"secrets re-sealed with key {report['new_key_id']}; key file {report['key_file']}")
