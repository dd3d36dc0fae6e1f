"""`wggw agent`: run the resident reconciler in the foreground (systemd runs it; see
templates/wggw-agent.service). Parse and start only; the agent lives in wggw/agent/."""

from __future__ import annotations

import re

import typer

from wggw.cli.common import BACKEND, open_store
from wggw.cli.common import gateway as global_gateway
from wggw.core.errors import ValidationError

_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9.]+|[A-Za-z0-9.-]*):(\d{1,5})$")


app = typer.Typer()


@app.command("agent")
def agent_cmd(
    ctx: typer.Context,
    metrics_listen: str | None = typer.Option(
        None,
        "--metrics-listen",
        metavar="ADDR:PORT",
        help="Serve Prometheus metrics here, e.g. 127.0.0.1:9586 or [::1]:9586 (default: none).",
    ),
    resync: float = typer.Option(
        60.0, "--resync", metavar="SECONDS", help="Full reconcile at least this often (safety net)."
    ),
    log_format: str = typer.Option(
        "text", "--log-format", metavar="FORMAT", help="text or json (one line per event)."
    ),
    metrics_max_peers: int = typer.Option(
        1000,
        "--metrics-max-peers",
        metavar="N",
        help="Per-peer series only while there are at most N peers (0: never).",
    ),
    max_repairs: int = typer.Option(
        10,
        "--max-repairs",
        metavar="N",
        help="Repairs per minute of one kind of object before backing off (contested).",
    ),
    gateway: str | None = typer.Option(
        None,
        "--gateway",
        envvar="WGGW_GATEWAY",
        metavar="NAME",
        help="Apply only what the store places on this gateway of a fleet, and report back.",
    ),
    backend: str | None = BACKEND,
) -> None:
    """Keep this host converged: apply at start, then heal kernel drift within a second,
    apply store changes (and `peer ... --apply` handed over by the CLI), resync periodically.
    Stopping it changes nothing on the host. Exit 75: another agent runs."""
    from wggw.agent.main import run_agent

    if log_format not in ("text", "json"):
        raise ValidationError("log-format", f"{log_format!r}: want text or json")
    if not resync > 0:
        raise ValidationError("resync", "must be a positive number of seconds")
    if max_repairs < 1:
        raise ValidationError("max-repairs", "must be at least 1")
    if metrics_max_peers < 0:
        raise ValidationError("metrics-max-peers", "must not be negative")
    if metrics_listen is not None:
        m = _LISTEN.match(metrics_listen)
        if m is None or not 0 < int(m.group(2)) < 65536:
            raise ValidationError(
                "metrics-listen", f"{metrics_listen!r}: want ADDR:PORT, e.g. 127.0.0.1:9586"
            )
    with open_store(ctx) as store:
        code = run_agent(
            store,
            backend,
            resync,
            log_format,
            metrics_listen,
            metrics_max_peers,
            max_repairs,
            gateway or global_gateway(ctx),  # `wggw --gateway gw1 agent` too
        )
    raise typer.Exit(code)
