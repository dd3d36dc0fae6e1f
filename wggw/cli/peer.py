"""`wggw peer ...`: add, list, show, remove peers and render their client configs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from wggw.cli.common import (
    BACKEND,
    JSON,
    echo_json,
    gateway,
    iso,
    open_store,
    table,
    write_private,
)
from wggw.cli.plain import peer_json, peer_lines
from wggw.core.errors import ValidationError

if TYPE_CHECKING:
    from wggw.core.model import Peer

app = typer.Typer(no_args_is_help=True)
REF = typer.Argument(..., metavar="TENANT/PEER", hidden=True)
APPLY = typer.Option(
    False,
    "--apply",
    help="Then make the kernel match for this peer only and verify it "
    "(the whole `apply` if its tenant is not applied yet, or for many peers).",
)


def show_peer(view: dict, as_json: bool) -> None:
    """One peer: the JSON contract, or text worded for people (`private key: held by wggw`)."""
    if as_json:
        echo_json(view)
        return
    typer.echo("\n".join(peer_lines(view)))


@app.command("add")
def add(
    ctx: typer.Context,
    refs: list[str] | None = typer.Argument(None, metavar="TENANT/PEER", hidden=True),
    from_file: Path | None = typer.Option(
        None,
        "--from-file",
        metavar="FILE",
        help="Peers from a CSV (header row) or JSON list: ref or tenant,name; optional "
        "public_key, keepalive, dns, expires.",
    ),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        metavar="KEY",
        help="The client's own key (wggw then stores no private key).",
    ),
    keepalive: int | None = typer.Option(
        None,
        "--keepalive",
        metavar="SECONDS",
        help="PersistentKeepalive seconds (0-65535, 0 = off).",
    ),
    dns: list[str] = typer.Option(
        [], "--dns", metavar="IP", help="DNS server IP for the client config; repeatable."
    ),
    expires: str | None = typer.Option(
        None,
        "--expires",
        metavar="WHEN",
        help="ISO 8601 date/time (UTC) or a duration: 30d, 12h, 90m.",
    ),
    as_json: bool = JSON,
    apply: bool = APPLY,
    backend: str | None = BACKEND,
) -> None:
    """Add peers: the next free address of each pool, a new key pair and PSK each.

    TENANT/PEER names one peer; give several, or a range such as acme/dev-{1..500} (wggw
    expands it), or --from-file. Many peers go in one transaction: all of them or, if one
    entry is bad, none."""
    refs = refs or []
    _check_wait(apply)
    if not refs and from_file is None:
        raise ValidationError(
            "peer", "give TENANT/PEER (or a range like acme/dev-{1..50}) or --from-file"
        )
    if len(refs) == 1 and from_file is None and "{" not in refs[0]:
        return _add_one(ctx, refs[0], public_key, keepalive, dns, expires, as_json, apply, backend)
    _add_many(ctx, refs, from_file, public_key, keepalive, dns, expires, as_json, apply, backend)


def _add_one(ctx, ref, public_key, keepalive, dns, expires, as_json, apply, backend) -> None:
    """One peer: point queries in the store, and with --apply only its WireGuard entries."""
    from wggw.ops import objects

    target = None
    with open_store(ctx) as store:
        with store.locked():
            peer = objects.add_peer(store, ref, public_key, keepalive, dns, expires)
            if apply:
                target = _apply_peer(store, backend, peer.tenant, peer, {peer.public_key}, as_json)
        _wait_fleet(store, target, as_json)
    if as_json:
        echo_json(peer_json(peer))
        return
    show_peer(peer_json(peer), False)
    if peer.private_key is not None:
        typer.echo(f"client config: wggw peer config {peer.ref} [--output FILE] [--qr]")


def _add_many(
    ctx, refs, from_file, public_key, keepalive, dns, expires, as_json, apply, backend
) -> None:
    from wggw.ops import bulk

    entries = bulk.entries_from_refs(refs, public_key, keepalive, dns, expires)
    if from_file is not None:
        entries += bulk.read_file(from_file)
    target = None
    with open_store(ctx) as store:
        with store.locked():
            peers = bulk.add_peers(store, entries)
            if apply:
                target = _apply_many(
                    store, backend, {p.tenant for p in peers}, as_json, gateway(ctx)
                )
        _wait_fleet(store, target, as_json)
    if as_json:
        echo_json([peer_json(p) for p in peers])
        return
    table(
        [[p.ref, ",".join(map(str, p.addresses)), p.public_key] for p in peers],
        ["PEER", "ADDRESSES", "PUBLIC KEY"],
    )
    typer.echo(f"{len(peers)} peer(s) added; client configs: wggw peer config TENANT/PEER")


def _apply_many(
    store, backend: str | None, tenants: set[str], as_json: bool, on: str | None = None
):
    """`peer add --apply` of many peers: the whole `apply` here for the tenants this host
    runs; for those placed on fleet gateways, what to wait for (the caller holds the lock)."""
    from wggw.ops import dataplane, fleetwait

    echo = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    targets = [fleetwait.peer_target(store, t) for t in sorted(tenants)]
    if any(t is None for t in targets):
        report, result = dataplane.apply(store, backend, echo, gateway=on)
        for line in report.lines():
            echo(line)
        echo(f"{len(result.changes)} change(s) applied.")
    return fleetwait.merged(targets)


def _check_wait(apply: bool) -> None:
    """A bad WGGW_FLEET_TIMEOUT is refused before anything is written."""
    if apply:
        from wggw.ops import fleetwait

        fleetwait.timeout_from_env()


def _wait_fleet(store, target, quiet_stdout: bool) -> None:
    """Wait, without the lock, until the fleet gateways in `target` applied the change."""
    if target is not None:
        from wggw.ops import fleetwait

        fleetwait.wait_for_peer(store, target, lambda line: typer.echo(line, err=quiet_stdout))


def _apply_peer(
    store,
    backend: str | None,
    tenant: str,
    peer: Peer | None,
    keys: set[str],
    quiet_stdout: bool,
):
    """`--apply` of one peer (cli/quick.py: the agent's, or this process's; on a fleet, the
    gateways to wait for). The caller holds the store lock."""
    from wggw.cli import quick

    def echo(line: str) -> None:
        typer.echo(line, err=quiet_stdout)  # keep --json output parseable

    return quick.apply_peer(store, backend, tenant, peer, keys, echo)


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: str | None = typer.Option(
        None, "--tenant", metavar="NAME", help="Only this tenant's peers."
    ),
    as_json: bool = JSON,
) -> None:
    """List peers."""
    from wggw.core import validate

    with open_store(ctx) as store:
        state = store.load()
    peers = state.peers
    if tenant is not None:
        peers = state.peers_of(validate.find_tenant(state, tenant).name)
    views = [peer_json(p) for p in peers]
    if as_json:
        echo_json(views)
        return
    table(
        [
            [
                f"{v['tenant']}/{v['name']}",
                ",".join(v["addresses"]),
                v["public_key"],
                v["expires_at"] or "-",
                "yes" if v["retiring"] else "-",
            ]
            for v in views
        ],
        ["PEER", "ADDRESSES", "PUBLIC KEY", "EXPIRES", "RETIRING"],
    )


@app.command("show")
def show(ctx: typer.Context, ref: str = REF, as_json: bool = JSON) -> None:
    """Show one peer (never its private key or PSK)."""
    from wggw.ops import objects

    with open_store(ctx) as store:
        peer = objects.lookup_peer(store.load(), ref)
        view = {**peer_json(peer), "rotations": rotation_history(store.events(peer.ref))}
    show_peer(view, as_json)


ROTATION_EVENTS = ("key.rotate", "config.delivered", "key.retire", "peer.expire")


def rotation_history(events: list[dict]) -> list[dict]:
    """The audit trail of a peer's keys: when, what, fingerprints (never secrets)."""
    return [
        {
            "at": iso(e["at"]) if isinstance(e["at"], (int, float)) else e["at"],
            "kind": e["kind"],
            **{
                k: v for k, v in e["details"].items() if k in ("old", "new", "key", "grace", "path")
            },
        }
        for e in events
        if e["kind"] in ROTATION_EVENTS
    ]


@app.command("remove")
def remove(
    ctx: typer.Context, ref: str = REF, apply: bool = APPLY, backend: str | None = BACKEND
) -> None:
    """Remove a peer (the kernel follows on `apply`, or at once with --apply)."""
    from wggw.ops import objects

    _check_wait(apply)
    target = None
    with open_store(ctx) as store:
        with store.locked():
            peer = objects.remove_peer(store, ref)
            typer.echo(f"removed peer {ref}")
            if apply:
                keys = {peer.public_key} | ({peer.retiring.public_key} if peer.retiring else set())
                target = _apply_peer(store, backend, peer.tenant, None, keys, False)
        _wait_fleet(store, target, False)


@app.command("config")
def config(
    ctx: typer.Context,
    ref: str = REF,
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Write here (0600) instead of stdout; .png/.svg with --qr.",
    ),
    qr: bool = typer.Option(
        False, "--qr", help="A QR code: on the terminal, or PNG/SVG by --output's suffix."
    ),
) -> None:
    """The client's wg-quick config (it contains the client's private key)."""
    from wggw.ops import objects
    from wggw.ops.render import QR_SUFFIXES, qr_png_or_svg, qr_text  # Jinja2 and segno: only here

    with open_store(ctx) as store:
        text = objects.peer_config(store.load(), ref)
    if qr and output is not None:
        if output.suffix.lower() not in QR_SUFFIXES:
            raise ValidationError("output", f"with --qr it must end in {' or '.join(QR_SUFFIXES)}")
        write_private(output, qr_png_or_svg(text, output.suffix))
        typer.echo(f"wrote QR code to {output}")
    elif qr:
        typer.echo(qr_text(text), nl=False)
    elif output is not None:
        write_private(output, text)
        typer.echo(f"wrote {output}")
    else:
        typer.echo(text, nl=False)
