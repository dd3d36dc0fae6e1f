"""CLI for `wggw rotate`: parse and print only."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("rotate")
    def rotate_cmd() -> None:
        """Rotate peer keys on a schedule (work in progress)."""
        raise typer.Exit(1)
