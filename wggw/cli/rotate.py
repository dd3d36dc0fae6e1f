"""`wggw rotate`: parse and print only (policy in core/rotate.py, the work in ops/rotation.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from wggw.cli.common import BACKEND, echo_json, gateway, open_store
from wggw.core.errors import EXIT_NOTIFY_FAILED, EXIT_OK, ValidationError


def _duration(field: str, value: str | None) -> int | None:
    """Like validate.duration, but 0 is allowed here ('rotate everything now', 'no overlap')."""
    if value is None:
        return None
    if re.fullmatch(r"\s*0+[wdhms]?\s*", value):
        return 0
    from wggw.core.validate import duration

    return duration(field, value)


app = typer.Typer()


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    older_than: str | None = typer.Option(
        None,
        "--older-than",
        metavar="DURATION",
        help="Rotate keys older than this (e.g. 30d); default: the tenant's policy, else 90d.",
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", metavar="NAME", help="Only this tenant's peers."
    ),
    peer: str | None = typer.Option(None, "--peer", metavar="TENANT/PEER", help="Only this peer."),
    grace: str | None = typer.Option(
        None,
        "--grace",
        metavar="DURATION",
        help="How long the old key keeps working (default 7d; 0 = no overlap).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Write each rotated peer's new config to DIR/<tenant>/<peer>.conf (0600).",
    ),
    notify: str | None = typer.Option(
        None,
        "--notify",
        metavar="COMMAND",
        help="Command run per rotated peer with TENANT PEER CONFIG_PATH (no shell).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would rotate, retire or expire; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable report."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success (for cron)."),
    backend: str | None = BACKEND,
) -> None:
    """Rotate peer keys by policy, with an overlap so nobody is cut off; remove expired
    peers; retire old keys whose grace is over. Safe to run unattended from cron."""
    from wggw.core import rotate as policy
    from wggw.ops import dataplane, rotation

    if tenant and peer:
        raise ValidationError("peer", "give --tenant or --peer, not both")
    grace_s = _duration("grace", grace)
    older_s = _duration("older-than", older_than)  # bad input: exit 2 before any kernel access
    with open_store(ctx) as store:
        selected = _selection(store.load(), tenant, peer)
        report = rotation.rotate(
            store,
            dataplane.system_for(backend, may_load=not dry_run),
            time.time(),
            older_than=older_s,
            grace=policy.DEFAULT_GRACE if grace_s is None else grace_s,
            selected=selected,
            out=out,
            notify=notify,
            dry_run=dry_run,
            gateway=gateway(ctx),
        )
    if as_json:
        echo_json(report.as_dict())
    elif not quiet:
        for line in report.lines() or ["Nothing to rotate, retire or expire."]:
            typer.echo(line)
    if report.notify_failed:
        for f in report.notify_failed:
            typer.echo(f"wggw: error: notify failed for {f['peer']}: {f['error']}", err=True)
        raise typer.Exit(EXIT_NOTIFY_FAILED)
    raise typer.Exit(EXIT_OK)


def _selection(state, tenant: str | None, peer: str | None) -> set[str] | None:
    from wggw.core import validate

    if tenant:
        validate.find_tenant(state, tenant)
        return {p.ref for p in state.peers if p.tenant == tenant}
    if peer:
        validate.find_peer(state, *validate.peer_ref(peer))
        return {peer}
    return None
