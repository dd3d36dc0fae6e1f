"""`wggw interface ...`: add, list, show, remove WireGuard interfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from wggw.cli.common import JSON, echo_json, open_store, show_view, table

if TYPE_CHECKING:
    from wggw.core.model import Interface, State

app = typer.Typer(no_args_is_help=True)


def interface_json(state: State, i: Interface) -> dict:
    return {
        "name": i.name,
        "listen_port": i.listen_port,
        "endpoint": i.endpoint,
        "mtu": i.mtu,
        "public_key": i.public_key,
        "tenants": [t.name for t in state.tenants_of(i.name)],
        "gateways": list(i.gateways),
    }


GATEWAY = typer.Option(
    [],
    "--gateway",
    metavar="NAME",
    help="A gateway it runs on; repeatable, in priority order (the first active, the "
    "others standing by). None: this host (a single-host store).",
)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    listen_port: int = typer.Option(
        ..., "--listen-port", metavar="PORT", help="UDP port to listen on (1-65535)."
    ),
    endpoint: str = typer.Option(
        ..., "--endpoint", metavar="HOST:PORT", help="HOST:PORT clients dial ([v6]:port)."
    ),
    mtu: int | None = typer.Option(
        None, "--mtu", metavar="BYTES", help="MTU, 1280-9000 (default: kernel's choice)."
    ),
    gateways: list[str] = GATEWAY,
    as_json: bool = JSON,
) -> None:
    """Add interface NAME (e.g. wg0) and generate its key pair."""
    from wggw.core import validate
    from wggw.ops import objects

    with open_store(ctx) as store:
        objects.add_interface(store, name, listen_port, endpoint, mtu, gateways)
        state = store.load()
    view = interface_json(state, validate.find_interface(state, name))
    show_view(view, as_json)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    gateways: list[str] = GATEWAY,
    local: bool = typer.Option(
        False, "--local", help="On no gateway: the host that runs `wggw apply` on this store."
    ),
    as_json: bool = JSON,
) -> None:
    """Place an interface (and the tenants not pinned elsewhere) on other gateways."""
    from wggw.core import validate
    from wggw.core.errors import ValidationError
    from wggw.ops import gateways as ops

    if bool(gateways) == local:
        raise ValidationError("gateway", "give --gateway NAME (repeatable) or --local")
    with open_store(ctx) as store:
        ops.set_interface_gateways(store, name, gateways)
        state = store.load()
    show_view(interface_json(state, validate.find_interface(state, name)), as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List interfaces."""
    with open_store(ctx) as store:
        state = store.load()
    views = [interface_json(state, i) for i in state.interfaces]
    if as_json:
        echo_json(views)
        return
    table(
        [
            [
                v["name"],
                str(v["listen_port"]),
                v["endpoint"],
                str(v["mtu"] or "-"),
                v["public_key"],
                ",".join(v["tenants"]) or "-",
                ",".join(v["gateways"]) or "-",
            ]
            for v in views
        ],
        ["NAME", "PORT", "ENDPOINT", "MTU", "PUBLIC KEY", "TENANTS", "GATEWAYS"],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    as_json: bool = JSON,
) -> None:
    """Show one interface."""
    from wggw.core import validate

    with open_store(ctx) as store:
        state = store.load()
    view = interface_json(state, validate.find_interface(state, name))
    show_view(view, as_json)


@app.command("remove")
def remove(
    ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME", hidden=True)
) -> None:
    """Remove an interface that carries no tenants (the kernel follows on `apply`)."""
    from wggw.ops import objects

    with open_store(ctx) as store:
        objects.remove_interface(store, name)
    typer.echo(f"removed interface {name}")
