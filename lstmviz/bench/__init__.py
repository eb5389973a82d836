"""Benchmarks: each scenario measured beside the strongest reference a careful user would
write, in the same run (``lstmviz bench NAME``).

- ``harness``: timing, child processes (``python -m``), the result every benchmark returns
  (its figures beside their targets, the machine, the time) and its table;
- ``fixtures``: the checkpoint, a synthetic store, text laid out in lanes;
- ``references``: what a careful user would write, measured beside ours;
- one module per scenario: ``train``, ``cells`` (train|record --cells), ``record``,
  ``intervene``, ``circuit``, ``analysis``, ``dashboard`` (with ``loadtest``), ``compare``, ``scale``,
  ``contrast``;
- ``browser``: headless Chromium, shared with the browser tests and tools;
- ``report``: ``docs/performance.md`` from the results (``python -m lstmviz.bench.report``)."""
