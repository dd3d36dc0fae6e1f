"""ops/hostrole.py: a fleet gateway's host refuses to apply another part (or none) than the
one it runs, until `down` makes it forget; a single-host store is never affected."""

from __future__ import annotations

import pytest

from wggw.agent.main import _check_role
from wggw.core.errors import ValidationError
from wggw.core.model import Gateway, State
from wggw.ops import hostrole

FLEET = State(gateways=(Gateway("gw1"), Gateway("gw2")))


@pytest.fixture(autouse=True)
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WGGW_RUN_DIR", str(tmp_path))
    return tmp_path


def test_a_gateway_host_keeps_its_role_until_down(run_dir) -> None:
    hostrole.check(FLEET, "gw1")  # no role yet: any
    hostrole.remember(FLEET, "gw1")
    assert (run_dir / "gateway").read_text() == "gw1\n"
    hostrole.check(FLEET, "gw1")
    for other, words in ((None, "placed on no gateway"), ("gw2", "gateway 'gw2'")):
        with pytest.raises(ValidationError) as e:
            hostrole.check(FLEET, other)
        msg = str(e.value)
        assert "runs gateway 'gw1'" in msg and words in msg and "--gateway gw1" in msg
    hostrole.forget()
    hostrole.check(FLEET, "gw2")


def test_the_local_part_of_a_fleet_is_a_role_too(run_dir) -> None:
    hostrole.remember(FLEET, None)
    assert (run_dir / "gateway").read_text() == "\n"
    hostrole.check(FLEET, None)
    with pytest.raises(ValidationError, match="no --gateway"):
        hostrole.check(FLEET, "gw1")


def test_a_single_host_store_records_nothing(run_dir) -> None:
    hostrole.remember(State(), None)
    assert not (run_dir / "gateway").exists()
    hostrole.check(State(), None)


def test_an_agent_on_a_fleet_store_needs_its_gateway(run_dir) -> None:
    with pytest.raises(ValidationError, match=r"fleet's \(gateways: gw1, gw2\)"):
        _check_role(FLEET, None)
    _check_role(FLEET, "gw2")
    with pytest.raises(ValidationError, match="runs gateway 'gw2'"):
        _check_role(FLEET, "gw1")
    hostrole.forget()
    _check_role(State(), None)  # one host, no fleet: as before
