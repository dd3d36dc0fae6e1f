"""wggw: a multi-tenant WireGuard egress gateway manager."""

__version__ = "0.1.0"
