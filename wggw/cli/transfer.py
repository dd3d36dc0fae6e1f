"""`wggw import wg-quick` and `wggw export wg-quick`: migrate from and to wg-quick."""

from __future__ import annotations

from pathlib import Path

import typer

from wggw.cli.common import echo_json, open_store, write_private

import_app = typer.Typer(no_args_is_help=True)
export_app = typer.Typer(no_args_is_help=True)


@import_app.command("wg-quick")
def import_wg_quick(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", hidden=True),
    tenant: str = typer.Option(
        ..., "--tenant", metavar="NAME", help="The tenant that receives the peers."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the imported peers as JSON."),
) -> None:
    """Add the peers of FILE, a wg-quick server config (e.g. /etc/wireguard/wg0.conf), to a
    tenant with their keys, PSKs and addresses; all or nothing."""
    from wggw.cli.peer import peer_json
    from wggw.ops import transfer  # wgconfig and Jinja2: only for these two commands

    with open_store(ctx) as store:
        peers = transfer.import_wg_quick(store, file, tenant)
    if as_json:
        echo_json([peer_json(p) for p in peers])
        return
    for p in peers:
        typer.echo(f"imported {p.ref} {', '.join(map(str, p.addresses))}")
    typer.echo(f"{len(peers)} peer(s) imported into tenant {tenant}")


@export_app.command("wg-quick")
def export_wg_quick(
    ctx: typer.Context,
    interface: str = typer.Argument(..., metavar="IFACE", hidden=True),
    output: Path | None = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write here (0600) instead of stdout."
    ),
) -> None:
    """The gateway side of interface IFACE as a wg-quick file (contains its private key)."""
    from wggw.ops import transfer

    with open_store(ctx) as store:
        state = store.load()
    if output is None:
        typer.echo(transfer.export_wg_quick(state, interface), nl=False)
        return
    write_private(output, transfer.export_wg_quick(state, interface))
    typer.echo(f"wrote {output}")
