"""What compilation needs to know about the host (pure values): main's default routes, the
addresses wggw did not add, the links. The backends observe them; desired.py and conflicts.py
read them (a module of its own, so that neither of those two imports the other for it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DefaultRoute:
    dev: str
    gateway: str | None


@dataclass(frozen=True)
class HostFacts:
    """What compilation needs to know about the host (observed by backends)."""

    default_routes: dict[int, DefaultRoute] = field(default_factory=dict)  # main table, per family
    foreign_addresses: frozenset[str] = frozenset()  # host addresses wggw did not add
    links: frozenset[str] = frozenset()
    foreign_devs: dict[str, str] = field(default_factory=dict, compare=False)  # address -> device
