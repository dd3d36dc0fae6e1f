"""Names this run's command for its audit records. The name is kept by store/actor.py; the
CLI reaches it through here (it imports only ops), without the cost of the audit modules."""

from __future__ import annotations

from wggw.store.actor import set_command

__all__ = ["set_command"]
