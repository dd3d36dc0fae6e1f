"""The `wggw` console entry point: the quick path of a one-peer change through a running
agent (cli/quick.py) or of a plain `apply` (cli/quickapply.py) when the command line is
that plain form, else the typer app."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    from wggw.cli import quick

    cmd = quick.parse(sys.argv[1:])
    if cmd is not None and quick.agent_listens():
        gc.disable()  # a short-lived process without cycles, as in cli/app.py's main
        sys.exit(quick.run(cmd))
    from wggw.cli import quickapply

    plain_apply = quickapply.parse(sys.argv[1:])
    if plain_apply is not None:
        gc.disable()  # as above: 10,000 peers are ~10^6 objects without a cycle
        quickapply.exit_now(quickapply.run(plain_apply))
    from wggw.cli.app import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
