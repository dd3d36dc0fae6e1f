"""`plan -v` and `apply -v` print the exact text wggw gives `nft -f`, as a here-document an
operator can paste into a shell to run it again (checked by running it against a stand-in
`nft` that records what it was given). The fake host stands in for the kernel."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from wggw.backends.fake import FakeSystem
from wggw.core.plan import ReplaceNft


class RecordingFake(FakeSystem):
    """The fake host, remembering every nft text it was asked to check or load."""

    def __init__(self) -> None:
        super().__init__()
        self.nft_texts: list[str] = []

    def check_nft(self, text: str) -> None:
        self.nft_texts.append(text)

    def _apply(self, s, c):
        if isinstance(c, ReplaceNft):
            self.nft_texts.append(c.spec.text)
        return super()._apply(s, c)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> RecordingFake:
    host = RecordingFake()
    monkeypatch.setattr("wggw.ops.dataplane.system_for", lambda backend=None, may_load=False: host)
    return host


def heredoc(output: str) -> str:
    found = re.findall(r"^nft -f - <<'WGGW_NFT'\n.*?^WGGW_NFT$", output, re.M | re.S)
    assert len(found) == 1, output
    return found[0]


def rerun(script: str, tmp_path: Path) -> tuple[str, str]:
    """Run the printed command in bash with a stand-in nft; returns (its args, its stdin)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "nft"
    stub.write_text('#!/bin/sh\necho "$@" > "$OUT.args"\ncat > "$OUT"\n')
    stub.chmod(0o755)
    out = tmp_path / "nft-stdin"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out)}
    subprocess.run(["bash", "-c", script], check=True, env=env, timeout=30)
    return Path(f"{out}.args").read_text().strip(), out.read_text()


def test_plan_verbose_prints_the_nft_transaction_as_a_rerunnable_command(gw, fake, tmp_path):
    plain = gw("plan").output
    verbose = gw("plan", "-v").output
    assert "WGGW_NFT" not in plain and "[#] nft -f (replace table inet wggw" in plain
    script = heredoc(verbose)
    # -v adds the script and nothing else: the [#] lines stay the same
    assert verbose.replace(script + "\n", "") == plain
    assert verbose.index("[#] nft -f (replace") < verbose.index(script)
    args, stdin = rerun(script, tmp_path)
    assert args == "-f -"
    assert stdin == fake.nft_texts[-1] and "table inet wggw {" in stdin
    assert "@pools_v4" in stdin and "$" not in stdin  # nothing for the shell to expand


def test_apply_verbose_prints_what_it_loads(gw, fake, tmp_path):
    out = gw("apply", "--verbose").output
    _, stdin = rerun(heredoc(out), tmp_path)
    assert stdin == fake.nft_texts[-1]  # the text applied, not just the one checked
    assert "change(s) applied" in out
    assert "WGGW_NFT" not in gw("apply").output  # nothing left to do, nothing printed twice


def test_quiet_wins_over_verbose(gw, fake):
    assert gw("apply", "--quiet", "-v").output == ""
    assert fake.nft_texts  # it did apply (and load the table)
