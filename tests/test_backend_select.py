"""Choosing the WireGuard backend reads and never writes: the kernel backend is found by a
generic-netlink family lookup (or the installed module), and only a caller that applies may
load the module by creating a probe link."""

from __future__ import annotations

import pytest

from wggw.backends import select
from wggw.core.errors import BackendError, BackendUnavailableError


def test_family_lookup_reads_the_kernel():
    assert select.genl_family_registered("nlctrl") is True  # always there
    assert select.genl_family_registered("wggwnofamily") is False


@pytest.fixture
def no_family(monkeypatch):
    """A host where the module is installed but not loaded; records any attempt to load it."""
    loads: list[str] = []
    monkeypatch.setattr(select, "genl_family_registered", lambda name="wireguard": False)
    monkeypatch.setattr(select, "module_installed", lambda release=None: True)
    monkeypatch.setattr(select, "_load_module", lambda: loads.append("link add") or None)
    return loads


def test_plan_and_status_never_load_the_module(no_family):
    assert select.kernel_problem() is None  # installed: plan shows the kernel backend
    assert select.select_backend("auto").kind == "kernel"
    assert no_family == []
    assert select.kernel_problem(may_load=True) is None
    assert no_family == ["link add"]  # only a caller that applies


def test_without_module_auto_is_userspace_and_kernel_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(select, "genl_family_registered", lambda name="wireguard": False)
    monkeypatch.setattr(select, "module_installed", lambda release=None: False)
    fake = tmp_path / "wireguard-go"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("WGGW_WIREGUARD_GO", str(fake))
    assert select.select_backend("auto").kind == "userspace"
    with pytest.raises(BackendUnavailableError, match="neither loaded nor installed"):
        select.select_backend("kernel")
    with pytest.raises(BackendError, match="unknown"):
        select.select_backend("bogus")


def test_module_index_lookup(tmp_path, monkeypatch):
    assert select.module_installed("no-such-release-of-linux") is False
