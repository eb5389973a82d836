"""Benchmarks: each scenario measured beside the strongest reference a careful user would
write, in the same run (``lstmviz bench NAME``)."""
