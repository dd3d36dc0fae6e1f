"""The operations the CLI (and later the agent) call: add/remove objects (objects.py), converge
the host with the store (converge.py), key rotation, import/export, status, metrics, rendering of
client configs. They validate, allocate, write the store and drive the backends; they print
nothing."""
