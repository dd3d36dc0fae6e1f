"""`wggw audit` and `wggw audit verify`: parse and print only (the chain is core/audit.py,
reading it ops/audit.py)."""

from __future__ import annotations

import json
import time

import typer

from wggw.cli.common import JSON, echo_json, fail, iso, open_store, table
from wggw.core.errors import EXIT_AUDIT_BROKEN

app = typer.Typer(invoke_without_command=True)


@app.callback()
def audit(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN", help="Only records since WHEN: 30m, 1h, 2d or ISO 8601."
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", metavar="NAME", help="Only records about this tenant and its peers."
    ),
    as_json: bool = JSON,
) -> None:
    """Who changed what, oldest first: every mutating command and every agent repair
    (--json: one JSON array). `wggw audit verify` checks the hash chain."""
    if ctx.invoked_subcommand is not None:
        return
    from wggw.ops import audit as ops_audit

    with open_store(ctx) as store:
        found = ops_audit.records(store, since, tenant, time.time())
    if as_json:
        echo_json([r.view() for r in found])
        return
    table(
        [
            [
                iso(r.at) or "-",
                _who(r.uid, r.user),
                r.command or "-",
                r.kind,
                r.subject,
                ",".join(r.keys) or "-",
                json.dumps(r.details, sort_keys=True) if r.details else "",
            ]
            for r in found
        ],
        ["TIME", "WHO", "COMMAND", "KIND", "OBJECT", "KEYS", "DETAILS"],
    )


def _who(uid: int | None, user: str | None) -> str:
    if uid is None:
        return user or "-"
    return f"{user}({uid})" if user else f"uid {uid}"


@app.command("verify")
def verify(
    ctx: typer.Context,
    expect: str | None = typer.Option(
        None,
        "--expect",
        metavar="SEQ:HASH",
        help="A head printed before and kept elsewhere: the chain must still hold it.",
    ),
) -> None:
    """Check the hash chain: exit 0 if intact (printing its head, to keep elsewhere), else
    one line naming the first bad record and exit 5."""
    from wggw.ops import audit as ops_audit

    with open_store(ctx) as store:
        broken, count, head = ops_audit.verify(store, expect)
    if broken is not None:
        fail(broken.line(), EXIT_AUDIT_BROKEN)
    if head is None:
        typer.echo("audit chain intact: no records yet")
    else:
        typer.echo(f"audit chain intact: {count} record(s); head {head.seq}:{head.hash}")
