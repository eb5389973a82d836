"""Gate saturation (Karpathy et al. 2015, fig. 3): per gate unit, how often it is nearly
closed or nearly open."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import StoreError
from ..store.reader import ActivationStore

GATE_KINDS = ("i", "f", "o", "r", "z")  # sigmoid gates, in [0, 1]


def gate_saturation(store: ActivationStore, low: float = 0.1, high: float = 0.9, chunk: int = 1 << 18) -> pd.DataFrame:
    """Karpathy et al. (2015) fig. 3: per layer, gate and unit, the fraction of characters
    with the gate left-saturated (< low) and right-saturated (> high)."""
    rows = []
    for s in store.series:
        if s.kind not in GATE_KINDS:
            continue
        block = store.series_block(*s.key)
        left = np.zeros(s.units)
        right = np.zeros(s.units)
        for a in range(0, len(store), chunk):
            part = np.asarray(block[:, a : a + chunk])
            left += (part < low).sum(1)
            right += (part > high).sum(1)
        n = max(len(store), 1)
        for unit in range(s.units):
            rows.append(
                {
                    "layer": s.layer,
                    "gate": s.kind,
                    "unit": unit,
                    "neuron": str(s.neuron(unit)),
                    "left": left[unit] / n,
                    "right": right[unit] / n,
                }
            )
    if not rows:
        raise StoreError("This store has no gates (an RNN has none): gate saturation needs an LSTM or GRU.")
    return pd.DataFrame(rows)
