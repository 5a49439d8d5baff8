"""The compilation stages, in order. `registry.STAGES` is the single list everything else reads."""
