"""`wggw plan`, `apply`, `status`, `down`: parse and print (the work is in ops/dataplane.py,
imported inside the commands so that others do not pay for it)."""

from __future__ import annotations

from pathlib import Path

import typer

from wggw.cli.common import BACKEND, db_url, echo_json, gateway, open_store, state_dir, table
from wggw.core.errors import EXIT_PATH_WRONG, EXIT_PLAN_CHANGES

app = typer.Typer()
NOTHING = "Nothing to do: the host matches the store."
VERBOSE = typer.Option(
    False,
    "--verbose",
    "-v",
    help="Also print the text given to `nft -f`, as a re-runnable command.",
)


@app.command("plan")
def plan(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    detailed_exitcode: bool = typer.Option(
        False,
        "--detailed-exitcode",
        help="Exit 0: nothing to do, 2: changes pending, 1: error, 64: bad input.",
    ),
    backend: str | None = BACKEND,
    verbose: bool = VERBOSE,
) -> None:
    """Show what `apply` would change, one "[#] ..." line per change (secrets masked).
    The nftables text is checked with the kernel's own parser (nft -c). Changes nothing."""
    from wggw.ops import dataplane

    with open_store(ctx) as store:
        lines = dataplane.plan(store, backend, verbose and not as_json, gateway(ctx))
    if as_json:
        echo_json({"changes": [line.removeprefix("[#] ") for line in lines], "count": len(lines)})
    else:
        typer.echo("\n".join(lines) if lines else NOTHING)
    if detailed_exitcode and lines:
        raise typer.Exit(EXIT_PLAN_CHANGES)


@app.command("apply")
def apply(
    ctx: typer.Context,
    backend: str | None = BACKEND,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    verbose: bool = VERBOSE,
) -> None:
    """Make the kernel match the store, then observe again (leftovers are an error)."""
    from wggw.core.planscript import VerboseEcho
    from wggw.ops import dataplane

    echo = None if quiet else VerboseEcho(typer.echo) if verbose else typer.echo
    with open_store(ctx) as store:
        report, result = dataplane.apply(store, backend, echo, gateway=gateway(ctx))
    if not quiet:
        for line in report.lines():
            typer.echo(line)
        typer.echo(f"{len(result.changes)} change(s) applied." if result.changes else NOTHING)


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    prometheus: Path | None = typer.Option(
        None,
        "--prometheus",
        metavar="FILE",
        help="Also write the figures as Prometheus metrics to FILE (node_exporter textfile "
        "format).",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Exit 4 if any tenant's packets would not take its own table "
        "and egress (for monitoring).",
    ),
    backend: str | None = BACKEND,
    fleet: bool = typer.Option(
        False,
        "--fleet",
        help="Every gateway's and every peer's last report, from the store alone "
        "(no kernel, no root).",
    ),
) -> None:
    """Per-peer latest handshake, endpoint and traffic; per-tenant totals; drift; and the
    path each tenant's packets take (asked of the kernel, like `ip route get`)."""
    from wggw.ops import dataplane

    if fleet:
        return _fleet_status(ctx, as_json, prometheus, check)
    with open_store(ctx) as store:
        report = dataplane.status(store, backend, gateway=gateway(ctx))
    if prometheus is not None:
        from wggw.ops import metrics

        metrics.write(report, prometheus)
    if as_json:
        echo_json(report)
    else:
        print_status(report)
    if check and dataplane.paths_wrong(report):
        raise typer.Exit(EXIT_PATH_WRONG)


@app.command("down")
def down(
    ctx: typer.Context,
    backend: str | None = typer.Option(
        None,
        "--backend",
        envvar="WGGW_BACKEND",
        metavar="NAME",
        help="Only this backend (default: every one found).",
    ),
    stop_agent: bool = typer.Option(
        False,
        "--stop-agent",
        help="If a wggw agent runs, ask it to stop first (else down refuses: exit 75).",
    ),
) -> None:
    """Remove everything wggw created on this host (interfaces, wireguard-go processes,
    rules, routes, its nft table, egress addresses it added) and nothing else.
    Works without the store. Refuses while a wggw agent runs (it would rebuild it all)."""
    from wggw.ops import dataplane

    done = dataplane.down(backend, typer.echo, stop_agent)
    typer.echo(f"{len(done)} object(s) removed." if done else "Nothing of wggw's is on this host.")
    if done:
        from wggw.ops import audit

        details: dict = {"removed": len(done)}
        if gateway(ctx):
            details["gateway"] = gateway(ctx)
        why = audit.record_in(state_dir(ctx), "down", "host", details, db_url(ctx))
        if why:
            typer.echo(f"wggw: warning: no audit record of this down: {why}", err=True)


def peer_state(p: dict) -> str:
    """A peer in words: not on the interface; on it but no handshake ever; a handshake in the
    last 3 minutes (WireGuard re-keys every 2 while traffic flows); or an older one."""
    if not p["configured"]:
        return "MISSING"
    if not p["latest_handshake"]:
        return "no handshake"
    return "up" if p["active"] else "idle"


def print_status(report: dict) -> None:
    rows = [
        [
            p["tenant"] + "/" + p["name"],
            p["interface"] or "-",
            p["endpoint"] or "-",
            p["latest_handshake"] or "never",
            str(p["rx_bytes"]),
            str(p["tx_bytes"]),
            peer_state(p),
        ]
        for p in report["peers"]
    ]
    table(rows, ["PEER", "IFACE", "ENDPOINT", "HANDSHAKE", "RX", "TX", "STATE"])
    typer.echo("")
    table(
        [
            [
                t["name"],
                str(t["peers"]),
                str(t["active_peers"]),
                str(t["rx_bytes"]),
                str(t["tx_bytes"]),
            ]
            for t in report["tenants"]
        ],
        ["TENANT", "PEERS", "ACTIVE", "RX", "TX"],
    )
    typer.echo("")
    if report["drift"]:
        typer.echo(
            f"Drift: {len(report['drift'])} difference(s) between the host and the store "
            "(run `wggw apply`):"
        )
        for line in report["drift"]:
            typer.echo(f"  [#] {line}")
    else:
        typer.echo("Drift: none (the host matches the store).")
    _print_paths(report["paths"])


def _print_paths(entries: list[dict]) -> None:
    bad = [e for e in entries if not e["ok"]]
    if not bad:
        typer.echo(
            f"Paths: every tenant's packets take its own table and egress ({len(entries)} checked)."
        )
        return
    typer.echo(f"Paths: {len(bad)} of {len(entries)} wrong:")
    for e in bad:
        by = f"; taken by ip rule {e['rule']}" if e["rule"] else ""
        typer.echo(f"  {e['tenant']} IPv{e['family']}: {e['got']}, expected {e['expected']}{by}")


def _fleet_status(ctx: typer.Context, as_json: bool, prometheus: Path | None, check: bool) -> None:
    """`status --fleet`: the store's view of the fleet (ops/gateways.fleet_status)."""
    from wggw.core.errors import ValidationError
    from wggw.ops import gateways

    if prometheus is not None or check:
        raise ValidationError("fleet", "--prometheus and --check are about this host, not --fleet")
    with open_store(ctx) as store:
        report = gateways.fleet_status(store)
    if as_json:
        echo_json(report)
        return
    from wggw.cli.gateway import HEADERS, row

    table([row(g) for g in report["gateways"]], list(HEADERS))
    typer.echo("")
    table(
        [
            [
                f"{p['tenant']}/{p['name']}",
                p["gateway"] or "-",
                p["endpoint"] or "-",
                p["latest_handshake"] or "never",
                str(p["rx_bytes"]),
                str(p["tx_bytes"]),
            ]
            for p in report["peers"]
        ],
        ["PEER", "GATEWAY", "ENDPOINT", "HANDSHAKE", "RX", "TX"],
    )
    typer.echo("")
    table(
        [
            [
                t["name"],
                ",".join(t["gateways"]) + (f" -> {t['moving_to']}" if t["moving_to"] else ""),
                str(t["peers"]),
                str(t["active_peers"]),
                str(t["rx_bytes"]),
                str(t["tx_bytes"]),
            ]
            for t in report["tenants"]
        ],
        ["TENANT", "GATEWAYS", "PEERS", "ACTIVE", "RX", "TX"],
    )
    typer.echo("")
    state = "converged" if report["converged"] else "NOT converged"
    typer.echo(f"Fleet: {state} at store generation {report['generation']}.")
