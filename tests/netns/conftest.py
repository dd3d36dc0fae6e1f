"""Shared fixtures of the root-only network-namespace suite: a skip guard and fresh lab topologies.

Every test in tests/netns needs root and working `ip netns`; without them the whole directory is
skipped with the reason printed (`pytest -rs`). Each fixture tears down what it built, also when
the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wggwtest import require_netns

from wggw.backends import runfiles
from wggw.lab.netns import LabError, Namespace
from wggw.lab.sandbox import Sandbox
from wggw.lab.topology import Lab


@pytest.fixture(scope="session")
def require_root() -> None:
    """Skip (with the reason) unless we are root and `ip netns` works; fail instead in CI."""
    require_netns("the netns suite")


@pytest.fixture(autouse=True)
def _netns_suite_needs_root(require_root: None) -> Iterator[None]:
    """Applies the guard to every test in this directory, including ones that build by hand;
    and after the test (and its lab's teardown) checks that it left no wggw runtime file."""
    runtime = runfiles.runtime_dir()  # this run's own (tests/conftest.py sets WGGW_RUN_DIR)
    before = set(runtime.glob("*")) if runtime.is_dir() else set()
    yield
    left = (set(runtime.glob("*")) if runtime.is_dir() else set()) - before
    # A gateway shared by a module's tests learns its peers' endpoints while a test runs: that
    # file is its own until the module's lab goes (checked at the end of the session instead).
    left = {p for p in left if not p.name.endswith(".endpoints.json")}
    assert not left, f"left in {runtime}: {sorted(p.name for p in left)}"


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir_empty_at_the_end() -> Iterator[None]:
    """When every lab of the run is gone, nothing of wggw's may be left in its runtime dir."""
    yield
    runtime = runfiles.runtime_dir()
    left = sorted(p.name for p in runtime.glob("*")) if runtime.is_dir() else []
    assert not left, f"left in {runtime} after the netns suite: {left}"


@pytest.fixture
def lab(require_root: None) -> Iterator[Lab]:
    """A fresh topology (gw, inet, clients `acme` and `globex`) for one test."""
    with Lab(("acme", "globex")) as built:
        yield built


@pytest.fixture(scope="module")
def module_lab(require_root: None) -> Iterator[Lab]:
    """One topology shared by a module's tests (they must leave it as they found it)."""
    with Lab(("acme", "globex")) as built:
        yield built


@pytest.fixture
def netns(require_root: None) -> Iterator[Namespace]:
    """One empty namespace (loopback up) for backend tests that need no topology."""
    box = Sandbox(prefix="wggw-t", short="wq")
    try:
        yield box.add_ns("ns")
    finally:
        problems = box.close()
        if problems:
            raise LabError(f"netns fixture teardown: {problems}")
