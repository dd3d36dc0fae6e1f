"""Backends: the only code that touches the kernel (netlink, WireGuard, nftables)."""
