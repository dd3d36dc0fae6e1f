"""The plain `wggw apply` takes the quick path (cli/quickapply.py, no typer): it prints what
the typer command prints, to a pipe, for the same kind of change, and converges as it does."""

from __future__ import annotations

import re
import subprocess

from gwhelper import Gateway

from wggw.lab.topology import new_ifname


def _normal(text: str) -> str:
    """Output with what differs from peer to peer (name, keys, addresses) blanked."""
    text = re.sub(r"[A-Za-z0-9+/]{43}=", "KEY", text)
    text = re.sub(r"\d+\.\d+\.\d+\.\d+/32|[0-9a-f:]+::[0-9a-f]+/128", "ADDR", text)
    return re.sub(r"\bsame\d\b", "NAME", text)


def test_quick_apply_prints_what_the_typer_apply_prints(lab) -> None:
    Gateway(lab, new_ifname("wgw")).configure()
    lab.wggw("apply")
    outputs = []
    for i, module in enumerate(("wggw.cli.entry", "wggw.cli.app")):
        lab.wggw("peer", "add", f"acme/same{i}")
        argv = [a if a != "wggw.cli.entry" else module for a in lab.wggw_argv("apply")]
        res = subprocess.run(argv, env=lab._py_env(), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        outputs.append(res.stdout)
        lab.wggw("plan", "--detailed-exitcode")  # converged
    quick, typer = outputs
    assert "[#] wg set" in quick and quick.rstrip().endswith("change(s) applied.")
    assert _normal(quick) == _normal(typer)
    assert lab.wggw("apply", "-q").stdout == ""
    assert "Nothing to do" in lab.wggw("apply").stdout
