"""CLI for the data plane: plan, apply, status, down (parse and print only)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_cmd() -> None:
        """Show what `apply` would change (work in progress)."""
        raise typer.Exit(1)

    @app.command("apply")
    def apply_cmd() -> None:
        """Make the kernel match the store (work in progress)."""
        raise typer.Exit(1)

    @app.command("status")
    def status_cmd() -> None:
        """Per-peer handshakes and traffic, per-tenant totals, drift (work in progress)."""
        raise typer.Exit(1)

    @app.command("down")
    def down_cmd() -> None:
        """Remove everything wggw created on this host (work in progress)."""
        raise typer.Exit(1)
