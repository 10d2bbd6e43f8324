"""closeloop benchmarks: ``python -m bench`` (``make bench``) prints each figure beside its target."""
