"""Fixtures of the HA tier: a root guard (namespaces, keepalived, wireguard-go) and the time
scale for slow machines. Every test builds its own HaLab and removes it, also when it fails."""

from __future__ import annotations

import os

import pytest
from wggwtest import require_netns

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
HA_TOOLS = ("ip", "wg", "wg-quick", "wireguard-go", "nft", "keepalived", "unshare")


@pytest.fixture(scope="session")
def require_ha() -> None:
    require_netns("the HA netns tests", HA_TOOLS)
