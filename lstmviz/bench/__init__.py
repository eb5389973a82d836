"""Benchmarks: each scenario measured beside the strongest reference a careful user would
write, in the same run (``lstmviz bench NAME``).

- ``harness``: timing, child processes (``python -m``), the result every benchmark returns
  (its figures beside their targets, the machine, the time) and its table;
- ``fixtures``: the checkpoint, the store (given or synthetic), text laid out in lanes and
  its chunks (ours run them by ``LaidText.run``; the references read them as plain batches);
- ``references``: what a careful user would write, measured beside ours;
- one module per scenario: ``train``, ``cells`` (train|record --cells), ``record``,
  ``intervene``, ``circuit``, ``analysis``, ``dashboard`` (with ``loadtest``), ``compare``,
  ``scale``, ``contrast``, ``attribute`` (with ``attribute_quality``);
- ``browser``: headless Chromium and the reads of a page (``text_of``...), shared with the
  browser tests and tools;
- ``report``: ``docs/performance.md`` from the results (``python -m lstmviz.bench.report``)."""
