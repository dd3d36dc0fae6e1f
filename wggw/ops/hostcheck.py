"""`tenant add` checks the new tenant's egress IPs against this host when it can read it
(core/conflicts.py): the same refusal `apply` would give later, given at once. A host that
cannot be read (no netlink here) is no reason to refuse: `apply` checks again."""

from __future__ import annotations

from wggw.core import conflicts
from wggw.core.errors import BackendError
from wggw.core.model import Tenant


def check_tenant(tenant: Tenant, floating: bool = False) -> None:
    """`floating`: its egress floats between gateways (core/ha.py): keepalived may hold it."""
    from wggw.backends.netlink import rtnl

    try:
        facts = rtnl.observe_facts()
    except (BackendError, OSError):
        return
    conflicts.check(
        [tenant], facts, frozenset(map(str, tenant.egress)) if floating else frozenset()
    )
