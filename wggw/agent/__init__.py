"""The resident agent (`wggw agent`): keeps the gateway converged between commands.

It adds triggers, not logic: kernel events (backends/netlink/events.py), store changes (a
control socket the CLI talks to, and a poll of the store's generation), and a periodic
resync all end in the same observe-plan-apply-verify of wggw.ops.converge. Modules:
loop (the event loop), apply (the one seam to the apply path), backoff (contested
objects), control (the socket), singleton (one agent per host), sdnotify, logs, metrics.
"""
