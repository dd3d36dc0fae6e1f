"""CLI for the data plane: plan, apply, status, down (parse and print only).

The reconcile machinery (and with it pyroute2) is imported inside the commands, so
commands that never touch the kernel do not pay for it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from wggw.core.errors import EXIT_PATH_WRONG, EXIT_PLAN_CHANGES
from wggw.cli.common import echo_json, open_store, table

BackendOpt = typer.Option(None, "--backend", envvar="WGGW_BACKEND",
                          help="WireGuard backend: auto (kernel module, else wireguard-go), kernel, userspace.")
VerboseOpt = typer.Option(False, "--verbose", "-v",
                          help="Also print the text given to `nft -f`, as a re-runnable command.")


def system_for(backend: Optional[str]):
    from wggw.backends.system import RealSystem
    from wggw.backends.wireguard import select_backend

    return RealSystem(select_backend(backend or "auto"))


def _all_systems():
    """Every WireGuard backend usable here: `down` removes devices of either kind."""
    from wggw.backends.system import RealSystem
    from wggw.backends import wg_kernel, wg_userspace

    systems = []
    if wg_kernel.probe() is None:
        systems.append(RealSystem(wg_kernel.KernelBackend()))
    binary = wg_userspace.find_wireguard_go()
    if binary is not None or not systems:
        systems.append(RealSystem(wg_userspace.UserspaceBackend(binary or "wireguard-go")))
    return systems


def housekeeping_and_converge(store, system, echo, now: Optional[float] = None):
    """The one apply path (apply and rotate): retire/expire due keys, then converge."""
    from wggw.ops import converge as reconcile, rotation as rotation_service

    from wggw.core import conflicts

    with store.locked():
        # An egress that conflicts with the host stops apply before anything, housekeeping too.
        conflicts.check(store.load().tenants, system.facts())
        report = rotation_service.housekeeping(store, system, now if now is not None else time.time())
        result = reconcile.converge(store.load(), system, echo)
    return report, result


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_cmd(ctx: typer.Context,
                 as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
                 detailed_exitcode: bool = typer.Option(
                     False, "--detailed-exitcode", help="Exit 0: nothing to do, 2: changes pending, 1: error."),
                 backend: Optional[str] = BackendOpt, verbose: bool = VerboseOpt) -> None:
        """Show what `apply` would change, one "\\[#] ..." line per change (secrets masked).
        The nftables text is checked with the kernel's own parser (nft -c)."""
        from wggw.ops import converge as reconcile

        with open_store(ctx) as store:
            result = reconcile.compute(store.load(), system_for(backend))
        if as_json:
            echo_json({"changes": [c.describe() for c in result.changes], "count": len(result.changes)})
        elif result.changes:
            from wggw.core.planscript import lines

            for line in lines(result.changes, verbose):
                typer.echo(line)
        else:
            typer.echo("Nothing to do: the host matches the store.")
        if detailed_exitcode and result.changes:
            raise typer.Exit(EXIT_PLAN_CHANGES)

    @app.command("apply")
    def apply_cmd(ctx: typer.Context, backend: Optional[str] = BackendOpt,
                  quiet: bool = typer.Option(False, "--quiet", "-q",
                                             help="Print nothing on success."),
                  verbose: bool = VerboseOpt) -> None:
        """Make the kernel match the store, then observe again (leftovers are an error)."""
        from wggw.core.planscript import VerboseEcho

        echo = None if quiet else (VerboseEcho(typer.echo) if verbose else typer.echo)
        with open_store(ctx) as store:
            report, result = housekeeping_and_converge(store, system_for(backend), echo)
        if not quiet:
            for line in report.lines():
                typer.echo(line)
            typer.echo(f"{len(result.changes)} change(s) applied." if result.changes
                       else "Nothing to do: the host matches the store.")

    @app.command("status")
    def status_cmd(ctx: typer.Context,
                   as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
                   prometheus: Optional[Path] = typer.Option(
                       None, "--prometheus", metavar="FILE",
                       help="Also write the figures as Prometheus metrics to FILE (node_exporter textfile format)."),
                   check: bool = typer.Option(
                       False, "--check", help="Exit 4 if any tenant's packets would not take "
                       "its own table and egress (for monitoring)."),
                   backend: Optional[str] = BackendOpt) -> None:
        """Per-peer latest handshake, endpoint and traffic; per-tenant totals; drift; and the
        path each tenant's packets take (asked of the kernel, like `ip route get`)."""
        from wggw.ops import converge as reconcile, paths
        from wggw.core import status

        with open_store(ctx) as store:
            state = store.load()
        system = system_for(backend)
        result = reconcile.compute(state, system, check_nft=False)
        checked = paths.check(state, result.desired, system)
        report = status.build(state, result, time.time(), checked)
        if prometheus is not None:
            from wggw.ops import metrics

            metrics.write(report, prometheus)
        if as_json:
            echo_json(report)
        else:
            _print_status(report)
        if check and paths.wrong(report["paths"]):
            raise typer.Exit(EXIT_PATH_WRONG)

    @app.command("down")
    def down_cmd(backend: Optional[str] = typer.Option(
            None, "--backend", envvar="WGGW_BACKEND", help="Only this backend (default: every one found).")) -> None:
        """Remove everything wggw created on this host (interfaces, wireguard-go processes,
        rules, routes, its nft table, egress addresses it added) and nothing else.
        Works without the store."""
        from wggw.ops import converge as reconcile

        systems = [system_for(backend)] if backend else _all_systems()
        done = reconcile.teardown(systems, typer.echo)
        typer.echo(f"{len(done)} object(s) removed." if done else "Nothing of wggw's is on this host.")


def _print_status(report: dict) -> None:
    rows = [[p["tenant"] + "/" + p["name"], p["interface"] or "-", p["endpoint"] or "-",
             p["latest_handshake"] or "never", str(p["rx_bytes"]), str(p["tx_bytes"]),
             "up" if p["configured"] else "MISSING"] for p in report["peers"]]
    table(rows, ["PEER", "IFACE", "ENDPOINT", "HANDSHAKE", "RX", "TX", "STATE"])
    typer.echo("")
    table([[t["name"], str(t["peers"]), str(t["active_peers"]), str(t["rx_bytes"]), str(t["tx_bytes"])]
           for t in report["tenants"]], ["TENANT", "PEERS", "ACTIVE", "RX", "TX"])
    typer.echo("")
    if report["drift"]:
        typer.echo(f"Drift: {len(report['drift'])} difference(s) between the host and the store "
                   "(run `wggw apply`):")
        for line in report["drift"]:
            typer.echo(f"  [#] {line}")
    else:
        typer.echo("Drift: none (the host matches the store).")
    _print_paths(report["paths"])


def _print_paths(entries: list[dict]) -> None:
    bad = [e for e in entries if not e["ok"]]
    if not bad:
        typer.echo("Paths: every tenant's packets take its own table and egress "
                   f"({len(entries)} checked).")
        return
    typer.echo(f"Paths: {len(bad)} of {len(entries)} wrong:")
    for e in bad:
        by = f"; taken by ip rule {e['rule']}" if e["rule"] else ""
        typer.echo(f"  {e['tenant']} IPv{e['family']}: {e['got']}, expected {e['expected']}{by}")
