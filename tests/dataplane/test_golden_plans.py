"""Golden plan scripts (the idea of Tailscale's TestRouterStates): for a fixed sequence of
configurations, the exact `[#]` lines (with the `nft -f` text, as `-v` prints it) that wggw
plans against the fake host are kept in tests/golden/, so any change in what wggw does to a
host shows up in review as a diff of those files.

After an intended change, regenerate them with WGGW_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
from golden_states import secrets_of, steps

from wggw.backends.fake import FakeSystem
from wggw.core.planscript import lines
from wggw.ops import converge as reconcile

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("WGGW_UPDATE_GOLDEN") == "1"
HEADER = "# wggw plan against the fake host (tests/dataplane/test_golden_plans.py)\n"


def _script(state, fake: FakeSystem) -> str:
    """Plan, print as `plan -v` does, apply; the plan after applying must be empty."""
    result = reconcile.converge(state, fake)
    assert reconcile.compute(state, fake).changes == []
    return HEADER + "".join(f"{line}\n" for line in lines(result.changes, verbose=True))


def _check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run with WGGW_UPDATE_GOLDEN=1, review, commit"
    assert text == path.read_text(), (
        f"the plan for {name} changed; if intended, rerun with WGGW_UPDATE_GOLDEN=1 and review "
        f"the diff of {path}"
    )


def test_each_transition_prints_its_golden_script():
    fake = FakeSystem()
    for name, state in steps():
        _check(name, _script(state, fake))


def test_golden_files_are_exactly_the_steps():
    """A renamed or dropped step must not leave a stale golden file behind."""
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(name for name, _ in steps())


def test_golden_scripts_show_no_secret_and_every_step_changes_something():
    scripts = {p.stem: p.read_text() for p in GOLDEN.glob("*.txt")}
    for name, state in steps():
        assert scripts[name].count("[#] ") >= 1, name
        for secret in secrets_of(state):
            assert secret.reveal() not in scripts[name], name
            assert secret.hex() not in scripts[name], name
    assert "private-key (hidden" in scripts["01-empty-to-one-tenant-v4"]
    assert "preshared-key (hidden)" in scripts["03-peers-added"]


def test_down_is_the_same_script_as_planning_the_empty_state():
    """`down` (no store) removes what the empty configuration removes, in the same order;
    only the sysctls differ (down gives back the values it found instead)."""
    *before, (_, empty) = steps()
    fakes = [FakeSystem(), FakeSystem()]
    for fake in fakes:
        for _, state in before:
            reconcile.converge(state, fake)
    via_plan = reconcile.converge(empty, fakes[0]).changes
    via_down = reconcile.teardown([fakes[1]])
    assert [str(c) for c in via_down] == [str(c) for c in via_plan]
    assert fakes[0].observe() == fakes[1].observe()


def _owned(fake: FakeSystem):
    """The fake host without its sysctls: forwarding stays on once set (nothing turns it
    off but `down`, which restores what it found), so it depends on the path taken."""
    return replace(fake.observe(), sysctls={})


@pytest.mark.parametrize("seed", range(6))
def test_random_order_of_the_configs_converges_to_the_same_host(seed):
    """Replay the configurations in a seeded random order (repeats allowed): every transition
    converges in one apply, and the host reached for a configuration does not depend on the
    path: it equals the host that configuration gives when applied to an empty host."""
    configs = [state for _, state in steps()]
    fresh = []
    for state in configs:
        fake = FakeSystem()
        reconcile.converge(state, fake)
        fresh.append(_owned(fake))
    rng = random.Random(seed)
    fake = FakeSystem()
    for _ in range(30):
        i = rng.randrange(len(configs))
        reconcile.converge(configs[i], fake)  # raises VerifyError if anything is left over
        assert reconcile.compute(configs[i], fake).changes == []
        assert _owned(fake) == fresh[i], f"seed {seed}: config {i} reached a different host"
