"""A one-peer change through a running agent in a real lab: `wggw peer add T/P --apply` takes
the quick path (no typer, no kernel backends imported), the agent applies it as a delta
(`path=delta` in its log), and a client with that peer's config really passes traffic out of
its tenant's egress address; `peer remove --apply` takes the peer off the device (the client's
traffic stops). The quick path prints what the typer command prints."""

from __future__ import annotations

import re
import subprocess

import pytest

from wggw.lab.netns import FetchError
from wggw.lab.topology import INET_URL_V4


def _imports(lab, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the CLI with -X importtime: its result and the modules it imported."""
    argv = lab.wggw_argv(*args)
    i = argv.index("-m")
    argv[i:i] = ["-X", "importtime"]
    res = subprocess.run(argv, env=lab._py_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    mods = {ln.rsplit("|", 1)[1].strip() for ln in res.stderr.splitlines() if "import time:" in ln}
    return res, mods


def _normal(text: str) -> str:
    """Output with what differs from peer to peer (name, keys, addresses, times) blanked."""
    text = re.sub(r"[A-Za-z0-9+/]{43}=", "KEY", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
    text = re.sub(r"10\.10\.0\.\d+/32|fd00:a::[0-9a-f]+/128", "ADDR", text)
    return re.sub(r"\bsame\d\b", "NAME", text)


@pytest.mark.kernel_tier  # the delta goes out as one genetlink message there
def test_peer_added_through_the_agent_passes_traffic(agent_lab) -> None:
    lab, gw, agents = agent_lab
    agent = agents[-1]
    client = lab.client("acme")
    try:
        res, mods = _imports(lab, "peer", "add", "acme/fresh", "--apply")
        assert "1 change(s) applied by the wggw agent." in res.stdout
        assert not {"typer", "click", "pyroute2", "wggw.backends.system"} & mods, sorted(mods)
        text = agent.wait_log("peer=fresh ", 5.0)
        assert re.search(r"peer=fresh changes=1 ms=[\d.]+ path=delta", text), text[-1000:]

        client.down_wireguard()
        gw.connect("acme", "fresh")
        assert gw.seen("acme", 4) == "203.0.113.10"  # out of acme's egress, through `fresh`

        before = agent.log().count("path=delta")
        res = lab.wggw("peer", "remove", "acme/fresh", "--apply")
        assert "removed peer acme/fresh" in res.stdout
        assert agent.wait_log("path=delta", 5.0, before + 1)
        with pytest.raises(FetchError):  # the gateway no longer knows the client's key
            for _ in range(3):
                client.fetch(INET_URL_V4, timeout=1.0)
        lab.wggw("plan", "--detailed-exitcode")  # and a full round has nothing to add
    finally:
        client.down_wireguard()
        gw.connect("acme")
        lab.wggw("peer", "remove", "acme/fresh", check=False)


def test_quick_path_prints_what_the_typer_command_prints(agent_lab) -> None:
    lab, _, _ = agent_lab
    quick = lab.wggw("peer", "add", "acme/same1", "--apply")
    argv = [a if a != "wggw.cli.entry" else "wggw.cli.app" for a in lab.wggw_argv()]
    typer = subprocess.run(
        [*argv, "peer", "add", "acme/same2", "--apply"],
        env=lab._py_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert typer.returncode == 0, typer.stderr
    assert _normal(quick.stdout) == _normal(typer.stdout)
    assert "client config: wggw peer config acme/same1" in quick.stdout
    gone = [lab.wggw("peer", "remove", f"acme/same{i}", "--apply").stdout for i in (1, 2)]
    assert _normal(gone[0]) == _normal(gone[1])
    # bad input: one line, the documented exit code, nothing changed, also on the quick path
    bad = lab.wggw("peer", "add", "nosuch/p", "--apply", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("wggw: error: ")
    assert len(bad.stderr.strip().splitlines()) == 1
