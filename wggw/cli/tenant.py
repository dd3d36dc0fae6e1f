"""`wggw tenant ...`: add, list, show, remove tenants."""

from __future__ import annotations

from typing import Optional

import typer

from wggw.ops import objects as service
from wggw.core import validate
from wggw.core.model import State, Tenant
from wggw.cli.common import echo_json, open_store, show_view, strs, table

app = typer.Typer(no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output (fields in the README).")


def tenant_json(state: State, t: Tenant) -> dict:
    return {"name": t.name, "interface": t.interface, "pools": strs(t.pools), "egress": strs(t.egress),
            "uplink": t.uplink, "via": strs(t.via), "table": t.table, "rotate_after": t.rotate_after,
            "peers": len(state.peers_of(t.name))}


def _show(state: State, name: str, as_json: bool) -> None:
    show_view(tenant_json(state, validate.find_tenant(state, name)), as_json)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Tenant name."),
    pool: list[str] = typer.Option(..., "--pool", help="Address pool CIDR; once per family."),
    egress: list[str] = typer.Option(..., "--egress", help="Egress IP; once per family, needs that family's pool."),
    interface: Optional[str] = typer.Option(None, "--interface", help="Needed when several interfaces exist."),
    uplink: Optional[str] = typer.Option(None, "--uplink", help="Device to leave by (default: main's default route)."),
    via: list[str] = typer.Option([], "--via", help="Next hop per family (default: main's gateway)."),
    rotate_after: Optional[str] = typer.Option(None, "--rotate-after", help="Key rotation period, e.g. 90d."),
    as_json: bool = JSON,
) -> None:
    """Add a tenant; it gets a routing table id from wggw's range."""
    with open_store(ctx) as store:
        service.add_tenant(store, name, pool, egress, interface, uplink, via, rotate_after)
        _show(store.load(), name, as_json)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Tenant name."),
    rotate_after: str = typer.Option(..., "--rotate-after",
                                     help="Key rotation period, e.g. 30d; 'default' for wggw's default (90d)."),
    as_json: bool = JSON,
) -> None:
    """Change a tenant's key rotation policy."""
    with open_store(ctx) as store:
        service.set_tenant(store, name, rotate_after)
        _show(store.load(), name, as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List tenants."""
    with open_store(ctx) as store:
        state = store.load()
    views = [tenant_json(state, t) for t in state.tenants]
    if as_json:
        echo_json(views)
        return
    table([[v["name"], v["interface"], ",".join(v["pools"]), ",".join(v["egress"]), v["uplink"] or "-",
            str(v["table"]), str(v["peers"])] for v in views],
          ["NAME", "INTERFACE", "POOLS", "EGRESS", "UPLINK", "TABLE", "PEERS"])


@app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """Show one tenant."""
    with open_store(ctx) as store:
        _show(store.load(), name, as_json)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    force: bool = typer.Option(False, "--force", help="Also remove the tenant's peers."),
) -> None:
    """Remove a tenant (refused while it has peers, unless --force)."""
    with open_store(ctx) as store:
        removed = service.remove_tenant(store, name, force)
    typer.echo(f"removed tenant {name}" + (f" and {removed} peer(s)" if removed else ""))
