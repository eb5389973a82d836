"""The shipped model of hard-wrapped prose, ``checkpoints/stdlib-prose``: it loads by name,
reads its test split back from its config, records and ranks, and its line-position cell
counts the characters into a line (the line-length cell of Karpathy et al., 2015)."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from lstmviz.analysis.evaluate import evaluation_documents
from lstmviz.analysis.line_lengths import line_lengths
from lstmviz.analysis.rankings import rank_neurons
from lstmviz.model.checkpoint import SHIPPED_DIR, load_checkpoint
from lstmviz.recording.recorder import record_activations
from lstmviz.recording.sources import open_source
from lstmviz.text.features import store_features
from lstmviz.text.lanes import limit_chars

COLUMN_CELL = "L2.c.48"  # checkpoints/README.md: Spearman +0.842 with the column on the whole test split
SLICE = 20_000  # the test split's first characters: the pydoc topics on comparisons, dicts, identifiers...
# Measured on SLICE (2026-12-05): Spearman +0.925 with the column, -0.601 with the characters
# until the end of the line; the bars leave a margin for other platforms' float sums.
COLUMN_BAR, TO_EOL_BAR = 0.9, 0.55


@pytest.fixture(scope="module")
def prose_model():
    return load_checkpoint("stdlib-prose")


@pytest.fixture(scope="module")
def test_slice(prose_model):
    return limit_chars(evaluation_documents(prose_model), SLICE)


def test_the_prose_model_is_shipped_and_opens_by_name(prose_model):
    assert prose_model.path == SHIPPED_DIR / "stdlib-prose"
    assert prose_model.config["corpus"]["sources"] == ["stdlib-prose"]
    assert open_source("stdlib-prose").content_hash == prose_model.content_hash  # as serve and compare open it
    snapshots = [p.name for p in prose_model.snapshots()]
    assert snapshots == ["step-001667", "step-003333"]


def test_its_test_split_comes_back_from_its_config(prose_model):
    docs = evaluation_documents(prose_model)
    assert sorted(d.name for d in docs) == prose_model.config["corpus"]["splits"]["test"]
    assert sum(len(d.text) for d in docs) == prose_model.config["corpus"]["chars"]["test"]


def test_it_records_and_ranks_its_column_cell_first(prose_model, test_slice, tmp_path):
    store = record_activations(prose_model, test_slice, tmp_path / "prose.store", kinds=("h", "c"), progress=False)
    assert len(store) == SLICE
    rankings = rank_neurons(store, store_features(store), ("h", "c"))
    assert rankings["column"].table.neuron[0] == COLUMN_CELL


def test_its_column_cell_counts_the_characters_into_a_line(prose_model, test_slice):
    """Checked apart from the recorder and the rankings: the fused model's c of layer 2, and
    the column and the characters left until the newline counted by hand."""
    layer, unit = 1, int(COLUMN_CELL.rsplit(".", 1)[1])
    values, columns, to_eol = [], [], []
    for doc in test_slice:
        ids = torch.tensor([prose_model.vocab.encode(doc.text)])
        _, cache = prose_model.model.run_with_cache(ids, names_filter=[f"layers.{layer}.hook_c"])
        values.append(cache[f"layers.{layer}.hook_c"][0, :, unit].numpy())
        doc_columns, doc_to_eol = [], []
        for line in doc.text.split("\n"):
            doc_columns += range(len(line) + 1)  # the newline ends its line, one column further
            doc_to_eol += range(len(line), -1, -1)  # 0 on the newline itself
        columns += doc_columns[:-1]  # the last line's newline is one past the text
        to_eol += doc_to_eol[:-1]
    values = np.concatenate(values)
    assert spearmanr(values, columns).statistic >= COLUMN_BAR
    assert spearmanr(values, to_eol).statistic <= -TO_EOL_BAR  # high near the line's end


def test_held_low_it_writes_longer_lines_and_held_high_shorter_ones(prose_model):
    """The cell read as the model reads it: held at its value where a line starts (-3) the
    model never comes to the end of a line; held where one ends (-0.5), it ends them early."""
    seeds, length = [0, 1, 2], 1000
    free = line_lengths(prose_model, seeds, length=length)
    low = line_lengths(prose_model, seeds, {COLUMN_CELL: -3.0}, length=length)
    high = line_lengths(prose_model, seeds, {COLUMN_CELL: -0.5}, length=length)
    assert max(high.seed_means) < min(free.seed_means)
    assert max(free.seed_means) < min(m for m in low.seed_means if m is not None)
