"""`wggw interface ...`: add, list, show, remove WireGuard interfaces."""

from __future__ import annotations

from typing import Optional

import typer

from wggw.ops import objects as service
from wggw.core import validate
from wggw.core.model import Interface, State
from wggw.cli.common import echo_json, open_store, show_view, table

app = typer.Typer(no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output (fields in the README).")


def interface_json(state: State, i: Interface) -> dict:
    return {"name": i.name, "listen_port": i.listen_port, "endpoint": i.endpoint, "mtu": i.mtu,
            "public_key": i.public_key, "tenants": [t.name for t in state.tenants_of(i.name)]}


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Interface name (e.g. wg0)."),
    listen_port: int = typer.Option(..., "--listen-port", help="UDP port to listen on (1-65535)."),
    endpoint: str = typer.Option(..., "--endpoint", help="HOST:PORT clients dial ([v6]:port)."),
    mtu: Optional[int] = typer.Option(None, "--mtu", help="MTU, 1280-9000 (default: kernel's choice)."),
    as_json: bool = JSON,
) -> None:
    """Add an interface and generate its key pair."""
    with open_store(ctx) as store:
        service.add_interface(store, name, listen_port, endpoint, mtu)
        state = store.load()
    view = interface_json(state, validate.find_interface(state, name))
    show_view(view, as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List interfaces."""
    with open_store(ctx) as store:
        state = store.load()
    views = [interface_json(state, i) for i in state.interfaces]
    if as_json:
        echo_json(views)
        return
    table([[v["name"], str(v["listen_port"]), v["endpoint"], str(v["mtu"] or "-"), v["public_key"],
            ",".join(v["tenants"]) or "-"] for v in views],
          ["NAME", "PORT", "ENDPOINT", "MTU", "PUBLIC KEY", "TENANTS"])


@app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """Show one interface."""
    with open_store(ctx) as store:
        state = store.load()
    view = interface_json(state, validate.find_interface(state, name))
    show_view(view, as_json)


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove an interface that carries no tenants (the kernel follows on `apply`)."""
    with open_store(ctx) as store:
        service.remove_interface(store, name)
    typer.echo(f"removed interface {name}")
