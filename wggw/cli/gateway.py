"""`wggw gateway ...`: add, list, show, remove the gateways of a fleet (ops/gateways.py)."""

from __future__ import annotations

from typing import Any

import typer

from wggw.cli.common import JSON, echo_json, open_store, show_view, table

app = typer.Typer(no_args_is_help=True)


def _text(key: str, value: Any) -> Any:
    """The text form of a view: the report's age with its unit."""
    if key == "report_age_seconds" and value is not None:
        return f"{value:g}s"
    return value


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    uplink: str | None = typer.Option(
        None,
        "--uplink",
        metavar="DEVICE",
        help="Its tenants' default uplink (default: main's default route there).",
    ),
    via: list[str] = typer.Option(
        [], "--via", metavar="IP", help="Its tenants' default next hop; once per family."
    ),
    as_json: bool = JSON,
) -> None:
    """Add gateway NAME: a host that runs `wggw agent --gateway NAME` on this store."""
    from wggw.ops import gateways

    with open_store(ctx) as store:
        gateways.add_gateway(store, name, uplink, via)
        view = gateways.show_gateway(store, name)
    show_view(view, as_json, _text)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    uplink: str | None = typer.Option(
        None, "--uplink", metavar="DEVICE", help="New default uplink; 'default': main's route."
    ),
    via: list[str] | None = typer.Option(
        None, "--via", metavar="IP", help="New next hops, once per family; 'default': none."
    ),
    as_json: bool = JSON,
) -> None:
    """Change a gateway's defaults for its tenants (its agent follows on its next round)."""
    from wggw.ops import gateways

    with open_store(ctx) as store:
        gateways.set_gateway(store, name, uplink, via or None)
        view = gateways.show_gateway(store, name)
    show_view(view, as_json, _text)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List gateways: what each runs, and its agent's applied generation, lag and health."""
    from wggw.ops import gateways

    with open_store(ctx) as store:
        views = gateways.list_gateways(store)
    if as_json:
        echo_json(views)
        return
    table([row(v) for v in views], list(HEADERS))


HEADERS = ("NAME", "INTERFACES", "TENANTS", "HEALTH", "APPLIED", "LAG", "AGE", "VERSION", "ERROR")


def row(v: dict) -> list[str]:
    """One gateway in `gateway list` and `status --fleet`."""
    active = v["interfaces"] + [f"{i} (standby)" for i in v["standby"]]
    return [
        v["name"],
        ",".join(active) or "-",
        str(len(v["tenants"])),
        v["health"],
        "-" if v["generation"] is None else str(v["generation"]),
        "-" if v["lag"] is None else str(v["lag"]),
        "-" if v["report_age_seconds"] is None else f"{v['report_age_seconds']:g}s",
        v["version"] or "-",
        v["error"] or "-",
    ]


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", hidden=True),
    as_json: bool = JSON,
) -> None:
    """Show one gateway."""
    from wggw.ops import gateways

    with open_store(ctx) as store:
        view = gateways.show_gateway(store, name)
    show_view(view, as_json, _text)


@app.command("remove")
def remove(
    ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME", hidden=True)
) -> None:
    """Remove a gateway and its reports (refused while anything is placed on it)."""
    from wggw.ops import gateways

    with open_store(ctx) as store:
        gateways.remove_gateway(store, name)
    typer.echo(f"removed gateway {name}")
