"""The pure core: what the operator wants (model), what wggw owns (naming), validation,
allocation, the compiled desired state, the plan of typed changes, nftables text, the rule
trie, rotation policy, key types, errors. No I/O, no clock, no subprocess: unit tested without root.
Nothing here imports wggw.store, wggw.backends, wggw.ops or wggw.cli (tests/test_layout.py)."""
