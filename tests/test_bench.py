"""The benchmarks' references compute the same numbers as our code, on small inputs: a
ratio against a reference that does something else would mean nothing."""

import textwrap

import numpy as np

from lstmviz.analysis.rankings import rank_neurons
from lstmviz.bench.scenarios import reference_rankings
from lstmviz.store.writer import write_store
from lstmviz.text.features import compute_features

CODE = textwrap.dedent(
    '''
    def area(width, height):
        """The area of a rectangle."""
        if width < 0 or height < 0:  # no negative sides
            raise ValueError("sides must not be negative")
        return width * height


    class Box:
        def __init__(self, size):
            self.size = size  # kept as given
    '''
)


def test_the_analysis_reference_ranks_as_we_do(tmp_path):
    n = len(CODE)
    docs = [("a.py", 0, n)]
    feats = compute_features(CODE, docs)
    rng = np.random.default_rng(1)
    h = np.round(rng.normal(size=(5, n)), 1)  # few distinct values: many ties
    c = rng.normal(size=(3, n)) * 4
    c[0] = feats["in_string"] * 2 + rng.normal(scale=0.5, size=n)
    h[4] = 0.25  # constant: correlates with nothing
    store = write_store(tmp_path / "s.store", CODE, docs, {(1, "h"): h, (1, "c"): c, (2, "h"): h[::-1].copy()})
    ours = rank_neurons(store, feats, ("h", "c"), workers=1)
    reference = reference_rankings(store, feats, ("h", "c"), block_size=3)
    names = feats.names()
    numeric = [k for k in names if not feats.is_binary(k)]
    binary = [k for k in names if feats.is_binary(k)]
    assert binary and numeric and len(reference["neurons"]) == 5 + 3 + 5
    for j, name in enumerate(numeric + binary):
        table = ours[name].table.set_index("neuron").loc[reference["neurons"]]
        if name in numeric:
            np.testing.assert_allclose(table["value"], reference["rho"][:, j], atol=1e-5)
        else:
            np.testing.assert_allclose(table["value"], reference["auroc"][:, j - len(numeric)], atol=1e-5)
        np.testing.assert_allclose(table["pearson"], reference["pearson"][:, j], atol=1e-5)


def test_the_compare_reference_correlates_as_we_do(tmp_path, monkeypatch):
    from lstmviz.analysis.compare import compare_stores
    from lstmviz.bench.scenarios import reference_correlations

    monkeypatch.setattr("lstmviz.analysis.compare.CHUNK", 700)  # several chunks, the last one short
    rng = np.random.default_rng(2)
    n = len(CODE) * 4
    base = rng.normal(size=(1, n))
    a = {(1, "h"): np.tanh(rng.normal(size=(6, n)) + base), (1, "c"): 5 + rng.normal(size=(4, n)) * 0.5 - base}
    b = {(1, "h"): np.tanh(rng.normal(size=(3, n)) - 2 * base), (2, "c"): rng.normal(size=(5, n)) + base}
    b[(2, "c")][1] = 1.0  # constant: correlates with nothing
    text, docs = CODE * 4, [("a.py", 0, n)]
    store_a = write_store(tmp_path / "a", text, docs, a, vocab=sorted(set(text)))
    store_b = write_store(tmp_path / "b", text, docs, b, vocab=sorted(set(text)))
    ours = compare_stores(store_a, store_b, with_features=False).r
    reference = reference_correlations(store_a, store_b)
    assert reference.shape == ours.shape == (10, 8)
    np.testing.assert_allclose(reference, ours, atol=1e-5)
    assert np.abs(ours).max() > 0.5 and not ours[:, 4].any()


def test_the_recording_reference_computes_the_states_we_record(tiny_checkpoint):
    import torch

    from lstmviz.bench.scenarios import _lane_batches, hoisted_cell_loop
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.recorder import record_activations
    from lstmviz.text.corpus import Document
    from lstmviz.text.lanes import chunk_plan, lane_bounds

    ckpt = load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{k}", CODE[k * 70 : k * 70 + 70]) for k in range(3)]  # one lane each: no state resets inside
    ours = record_activations(ckpt, docs, None, progress=False)
    batches, n = _lane_batches(ckpt, docs, 3, 32)
    _, kept = hoisted_cell_loop(ckpt, batches)
    cfg = ckpt.model_config
    h = torch.zeros(cfg.num_layers, n, cfg.hidden_size)
    c = torch.zeros_like(h)
    bounds = np.array(lane_bounds(np.array([0, 70, 140]), n, 3))
    plan = chunk_plan(bounds[:, 0], bounds[:, 1] - bounds[:, 0], 32)
    for (_, pos, valid), (chunk_h, chunk_c) in zip(plan, kept, strict=True):
        h[:, torch.from_numpy(pos[valid])] = chunk_h[:, torch.from_numpy(valid)]
        c[:, torch.from_numpy(pos[valid])] = chunk_c[:, torch.from_numpy(valid)]
    assert len(batches) == 3 and len(batches[0][0]) == 3
    for layer in range(cfg.num_layers):
        for kind, series in (("h", h), ("c", c)):
            recorded = np.asarray(ours.series_block(layer + 1, kind), dtype=np.float32)  # float16 as stored
            np.testing.assert_allclose(series[layer].T.numpy(), recorded, rtol=2e-3, atol=2e-3)


def test_bench_record_times_the_whole_recording_beside_its_references(tiny_checkpoint):
    """`bench record` end to end on a small text: the recording (a child `lstmviz record`,
    timed until its store is on disk), the fused forward, the recording's forward alone and
    the hoisted loop, all measured, all over the same characters."""
    from lstmviz.bench.scenarios import bench_record

    result = bench_record(str(tiny_checkpoint), chars=3000, repeats=1)
    assert 0 < result["chars"] <= 3000 and result["bytes_per_value"] == 2 and result["series"] == 12
    for key in ("chars_per_s", "fused_chars_per_s", "cell_loop_chars_per_s", "model_part_chars_per_s"):
        assert result[key] > 0, key
    assert abs(result["ratio_vs_fused"] - result["chars_per_s"] / result["fused_chars_per_s"]) < 0.01
