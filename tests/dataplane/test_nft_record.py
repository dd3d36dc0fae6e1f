"""The nft record (what the kernel held right after wggw's load) is listed by an nft process
started right after the load and read once the rest of the apply is done: it is always
written, also when a later change fails, and that change's failure is the one reported."""

from __future__ import annotations

import pytest

from wggw.backends import nft
from wggw.backends.system import RealSystem
from wggw.core.errors import BackendError
from wggw.core.nftables import NftSpec
from wggw.core.plan import AddTc, ReplaceNft
from wggw.core.tcguard import INGRESS, TcSpec

NFT = ReplaceNft(NftSpec("table inet wggw {}\n", "0123456789abcdef"))


class Looked(Exception):
    pass


MISSING = AddTc(TcSpec.wanted("wggw-no-such0", INGRESS))  # no such link: the tc step fails


@pytest.fixture
def calls(monkeypatch) -> list:
    seen: list = []
    monkeypatch.setattr(nft, "load", lambda text, check_only=False: seen.append("load"))
    monkeypatch.setattr(nft, "start_listing", lambda: seen.append("start") or "listing")
    monkeypatch.setattr(nft, "record_loaded", lambda started=None: seen.append(started))
    return seen


def test_listing_starts_after_the_load_and_is_recorded_at_the_end(calls):
    RealSystem(wg=None).apply([NFT])
    assert calls == ["load", "start", "listing"]


def test_a_later_failure_is_reported_and_the_record_still_written(calls):
    with pytest.raises(BackendError, match="wggw-no-such0"):
        RealSystem(wg=None).apply([NFT, MISSING])
    assert calls == ["load", "start", "listing"]


def test_a_failed_record_is_reported_unless_the_apply_failed(calls, monkeypatch):
    def gone(started=None):
        raise BackendError("nftables table inet wggw: gone right after loading it")

    monkeypatch.setattr(nft, "record_loaded", gone)
    with pytest.raises(BackendError, match="gone right after"):
        RealSystem(wg=None).apply([NFT])
    with pytest.raises(BackendError, match="wggw-no-such0"):
        RealSystem(wg=None).apply([NFT, MISSING])


def test_unsettled_record_waits_for_settle_or_the_next_observation(calls, monkeypatch):
    """`apply(..., settle=False)` (converge: a device's peers start right after the table)
    leaves the record to `settle()`, which writes it once; the next observation settles
    first, so it never reads a record older than the table it sees."""
    system = RealSystem(wg=None)
    system.apply([NFT], settle=False)
    assert calls == ["load", "start"]
    system.settle()
    system.settle()
    assert calls == ["load", "start", "listing"]

    system.apply([NFT], settle=False)

    def observe():
        calls.append("observe")
        raise Looked  # what observe_host reads after the table does not matter here

    monkeypatch.setattr(nft, "observe", observe)
    with pytest.raises(Looked):
        system.observe_host(names=[])
    assert calls[-2:] == ["listing", "observe"]


def test_unsettled_apply_that_fails_still_writes_its_record(calls):
    system = RealSystem(wg=None)
    with pytest.raises(BackendError, match="wggw-no-such0"):
        system.apply([NFT, MISSING], settle=False)
    assert calls == ["load", "start", "listing"]
    system.settle()
    assert calls == ["load", "start", "listing"]


def test_the_verify_takes_the_listing_of_a_whole_apply_once(calls, monkeypatch):
    """The table as listed right after a successful load is the next look's (the apply's
    verify: no second listing of 1,000 tenants' table); only once, and never after a failed
    apply (its next look may come much later)."""
    listed = nft.ObservedNft(True, "0123456789abcdef", {}, True)
    monkeypatch.setattr(nft, "record_loaded", lambda started=None: listed)
    monkeypatch.setattr(nft, "observe", lambda: "listed again")
    system = RealSystem(wg=None)
    system.apply([NFT])
    assert system.observe_host(names=[]).nft is listed
    assert system.observe_host(names=[]).nft == "listed again"
    with pytest.raises(BackendError, match="wggw-no-such0"):
        system.apply([NFT, MISSING])
    assert system.observe_host(names=[]).nft == "listed again"
