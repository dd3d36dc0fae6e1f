"""`wggw tenant ...`: add, list, show, remove tenants."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from wggw.cli.common import JSON, echo_json, gateway, open_store, show_view, strs, table

if TYPE_CHECKING:
    from wggw.core.model import State, Tenant

app = typer.Typer(no_args_is_help=True)


def tenant_json(state: State, t: Tenant) -> dict:
    return {
        "name": t.name,
        "interface": t.interface,
        "pools": strs(t.pools),
        "egress": strs(t.egress),
        "uplink": t.uplink,
        "via": strs(t.via),
        "table": t.table,
        "rotate_after": t.rotate_after,
        "peers": len(state.peers_of(t.name)),
        "gateway": t.gateway,
        "moving_to": t.moving_to,
    }


def _show(state: State, name: str, as_json: bool) -> None:
    from wggw.core import validate

    show_view(tenant_json(state, validate.find_tenant(state, name)), as_json)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    pool: list[str] = typer.Option(
        ..., "--pool", metavar="CIDR", help="Address pool CIDR; once per family."
    ),
    egress: list[str] = typer.Option(
        ..., "--egress", metavar="IP", help="Egress IP; once per family, needs that family's pool."
    ),
    interface: str | None = typer.Option(
        None, "--interface", metavar="NAME", help="Needed when several interfaces exist."
    ),
    uplink: str | None = typer.Option(
        None,
        "--uplink",
        metavar="DEVICE",
        help="Device to leave by (default: main's default route).",
    ),
    via: list[str] = typer.Option(
        [], "--via", metavar="IP", help="Next hop per family (default: main's gateway)."
    ),
    rotate_after: str | None = typer.Option(
        None, "--rotate-after", metavar="DURATION", help="Key rotation period, e.g. 90d."
    ),
    as_json: bool = JSON,
) -> None:
    """Add a tenant; it gets a routing table id from wggw's range."""
    from wggw.ops import objects

    with open_store(ctx) as store:
        objects.add_tenant(
            store, name, pool, egress, interface, uplink, via, rotate_after, here=gateway(ctx)
        )
        _show(store.load(), name, as_json)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    rotate_after: str = typer.Option(
        ...,
        "--rotate-after",
        metavar="DURATION",
        help="Key rotation period, e.g. 30d; 'default' for wggw's default (90d).",
    ),
    as_json: bool = JSON,
) -> None:
    """Change a tenant's key rotation policy."""
    from wggw.ops import objects

    with open_store(ctx) as store:
        objects.set_tenant(store, name, rotate_after)
        _show(store.load(), name, as_json)


@app.command("move")
def move(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    to: str = typer.Option(..., "--to", metavar="GATEWAY", help="The gateway to move it to."),
    timeout: float = typer.Option(
        60.0,
        "--timeout",
        metavar="SECONDS",
        help="How long the target may take to report the tenant built (then: rolled back).",
    ),
    as_json: bool = JSON,
) -> None:
    """Move a tenant to another gateway: the target builds it, then the old ones release it."""
    from wggw.ops import tenantmove

    def say(line: str) -> None:
        typer.echo(line, err=as_json)  # keep --json output parseable

    with open_store(ctx) as store:
        moved = tenantmove.move_tenant(store, name, to, timeout, say)
        if moved is None:
            say(f"tenant {name} runs on {to} already; nothing changed")
        else:
            left = ", ".join(g for g in moved.source if g != to)
            say(
                f"moved tenant {name} to {to} in {moved.waited:.2f}s; {left} release(s) it "
                f"from generation {moved.generation}"
            )
        if as_json:
            _show(store.load(), name, True)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List tenants."""
    with open_store(ctx) as store:
        state = store.load()
    views = [tenant_json(state, t) for t in state.tenants]
    if as_json:
        echo_json(views)
        return
    table(
        [
            [
                v["name"],
                v["interface"],
                ",".join(v["pools"]),
                ",".join(v["egress"]),
                v["uplink"] or "-",
                str(v["table"]),
                str(v["peers"]),
            ]
            for v in views
        ],
        ["NAME", "INTERFACE", "POOLS", "EGRESS", "UPLINK", "TABLE", "PEERS"],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    as_json: bool = JSON,
) -> None:
    """Show one tenant."""
    with open_store(ctx) as store:
        _show(store.load(), name, as_json)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    force: bool = typer.Option(False, "--force", help="Also remove the tenant's peers."),
) -> None:
    """Remove a tenant (refused while it has peers, unless --force)."""
    from wggw.ops import objects

    with open_store(ctx) as store:
        removed = objects.remove_tenant(store, name, force)
    typer.echo(f"removed tenant {name}" + (f" and {removed} peer(s)" if removed else ""))
