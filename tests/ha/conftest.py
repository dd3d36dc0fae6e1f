"""Fixtures of the HA tier: a root guard (namespaces, keepalived, wireguard-go). Every test
builds its own HaLab and removes it, also when it fails."""

from __future__ import annotations

import pytest
from wggwtest import require_netns

HA_TOOLS = ("ip", "wg", "wg-quick", "wireguard-go", "nft", "keepalived", "unshare")


@pytest.fixture(scope="session")
def require_ha() -> None:
    require_netns("the HA netns tests", HA_TOOLS)
