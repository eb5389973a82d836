"""The benchmarks' references compute the same numbers as our code, on small inputs: a
ratio against a reference that does something else would mean nothing. Every benchmark also
runs here at a tiny size (a smoke run: it completes, its JSON has its keys and the schema's
shape, and the performance page is made from it), so a broken benchmark fails the suite."""

import json
import textwrap
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from lstmviz.analysis.rankings import rank_neurons
from lstmviz.bench.references import reference_rankings
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
    from lstmviz.bench.references import reference_correlations

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

    from lstmviz.bench.fixtures import laid_chunks, user_batches
    from lstmviz.bench.references import hoisted_cell_loop
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.recording.recorder import record_activations
    from lstmviz.text.corpus import Document
    from lstmviz.text.lanes import chunk_plan, lane_bounds

    ckpt = load_checkpoint(tiny_checkpoint)
    docs = [Document(f"d{k}", CODE[k * 70 : k * 70 + 70]) for k in range(3)]  # one lane each: no state resets inside
    ours = record_activations(ckpt, docs, None, progress=False)
    laid, chunks = laid_chunks(ckpt, docs, 3, 32)
    batches, n = user_batches(chunks), len(laid.text)
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


def test_the_synthetic_store_holds_the_first_characters_of_the_stdlib(tmp_path):
    from lstmviz.bench.fixtures import synthetic_store
    from lstmviz.text.corpus import load_corpus

    store, source = synthetic_store(tmp_path / "s.store", 5000, units=2)
    documents = load_corpus(max_chars=5000).documents
    assert store.text() == "".join(d.text for d in documents)[:5000] and "over 5,000 stdlib characters" in source
    cut = [(d.name, d.start, d.stop) for d in store.documents]
    assert [start for _, start, _ in cut] == [0, *(stop for _, _, stop in cut[:-1])] and cut[-1][2] == 5000
    assert [name for name, _, _ in cut] == [d.name for d in documents][: len(cut)]
    assert store.series_block(1, "h").shape == (2, 5000)


@pytest.mark.parametrize("neuron", ["L1.c.2", "L2.h.7"])
def test_the_circuit_reference_computes_our_terms(tiny_checkpoint, tiny_store, neuron):
    from lstmviz.analysis.circuits import unit_circuits
    from lstmviz.bench.references import reference_circuit
    from lstmviz.core.neurons import NeuronId
    from lstmviz.model.checkpoint import load_checkpoint
    from lstmviz.text.features import store_features

    ckpt, unit = load_checkpoint(tiny_checkpoint), NeuronId.parse(neuron)
    inside = np.flatnonzero(store_features(tiny_store)["in_string"])
    (ours,), _ = unit_circuits(ckpt, tiny_store, [unit], inside, ckpt.vocab.encode_array(tiny_store.text()))
    reference = reference_circuit(ckpt, tiny_store, unit, inside)
    for gate in "ifgo":
        np.testing.assert_allclose(ours.terms[gate], reference[gate], atol=1e-6)


# -- smoke runs ------------------------------------------------------------------------------------

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "bench-result.schema.json").read_text())


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Recordings the benchmarks cache (and the dashboards they serve) go to a fresh folder."""
    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))


def bench_cli(*args: str) -> dict:
    """``lstmviz bench ARGS --json``, as a user runs it: its result."""
    from lstmviz.cli.main import main

    done = CliRunner().invoke(main, ["bench", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def check_result(result: dict, keys: list[str], tmp_path: Path) -> str:
    """The result as ``--json`` prints it has the schema's shape and these figures; the
    performance page made from it shows each target beside its figure. Returns the page."""
    from lstmviz.bench.report import write_performance

    printed = json.loads(json.dumps(result))
    jsonschema.validate(printed, SCHEMA)
    assert set(keys) <= set(printed), sorted(set(keys) - set(printed))
    (tmp_path / "bench").mkdir(exist_ok=True)
    (tmp_path / "bench" / "result.json").write_text(json.dumps(printed))
    page = write_performance(tmp_path / "bench", tmp_path / "performance.md").read_text()
    assert f"## `lstmviz bench {printed['benchmark']}`" in page
    for figure in printed["targets"]:
        assert f"| `{printed['benchmark']}` | {figure} |" in page
    return page


def test_bench_train_smoke(tiny_checkpoint, tmp_path):
    result = bench_cli("train", "--checkpoint", str(tiny_checkpoint), "--steps", "12", "--repeats", "1")
    check_result(result, ["chars_per_s", "plain_chars_per_s", "ratio", "runs"], tmp_path)
    assert result["chars_per_s"] > 0 and result["plain_chars_per_s"] > 0


@pytest.mark.parametrize("args", [["train", "--steps", "20"], ["record", "--chars", "1000"]])
def test_bench_cells_smoke(args, tmp_path):
    result = bench_cli(*args, "--cells", "cifg", "--repeats", "1")
    page = check_result(result, ["model", "cells"], tmp_path)
    assert [row["cell"] for row in result["cells"]] == ["lstm", "cifg"] and result["cells"][0]["ratio_vs_lstm"] == 1
    assert "| cell | chars_per_s | ratio_vs_lstm |" in page


def test_bench_record_smoke(tiny_checkpoint, tmp_path):
    """The recording (a child `lstmviz record`, timed until its store is on disk), the fused
    forward, the recording's forward alone and the hoisted loop, all over the same characters."""
    from lstmviz.bench.record import bench_record

    result = bench_record(str(tiny_checkpoint), chars=3000, repeats=1, read_chars=10_000)
    check_result(result, ["chars_per_s", "fused_chars_per_s", "cell_loop_chars_per_s", "peak_rss_mb", "read_ms"], tmp_path)
    assert 0 < result["chars"] <= 3000 and result["bytes_per_value"] == 2 and result["series"] == 12
    for key in ("chars_per_s", "fused_chars_per_s", "cell_loop_chars_per_s", "model_part_chars_per_s", "peak_rss_mb"):
        assert result[key] > 0, key
    assert abs(result["ratio_vs_fused"] - result["chars_per_s"] / result["fused_chars_per_s"]) < 0.01


def test_bench_intervene_smoke(tiny_checkpoint, tmp_path):
    from lstmviz.bench.intervene import bench_intervene

    result = bench_intervene(str(tiny_checkpoint), chars=2000, repeats=1, sample_chars=50, unit=5)
    check_result(result, ["exact_chars_per_s", "loop_chars_per_s", "ratio_vs_loop", "sample_chars_per_s"], tmp_path)
    assert result["intervention"].startswith("L1.c.5 ") and result["max_logit_difference"] < 1e-3


def test_bench_dictionary_smoke(tiny_checkpoint, cache, tmp_path):
    result = bench_cli("dictionary", "--checkpoint", str(tiny_checkpoint), "--steps", "10")
    check_result(result, ["train_seconds", "step_ms", "sae_lens_step_ms", "variance_explained", "dead", "dense"], tmp_path)
    assert (
        result["features"] == 8 * 24 and result["train_seconds"] > 0 and result["variance_explained"] <= 1
    )  # 10 steps: far from fit


def test_bench_circuit_smoke(tiny_checkpoint, cache, tmp_path):
    args = ["--checkpoint", str(tiny_checkpoint), "--neuron", "L2.c.3", "--chars", "2000", "--repeats", "1"]
    result = bench_cli("circuit", *args)
    check_result(result, ["seconds", "one_level_seconds", "reference_seconds", "ratio_vs_reference", "check_seconds"], tmp_path)
    assert 0 < result["chars"] <= 2000 and result["neuron"] == "L2.c.3" and result["max_term_difference"] < 1e-5


def test_bench_analysis_smoke(tmp_path):
    result = bench_cli("analysis", "--chars", "2000", "--repeats", "1")
    check_result(result, ["seconds", "reference_seconds", "ratio", "neurons", "features"], tmp_path)
    assert result["chars"] == 2000 and result["neurons"] == 1536


def test_bench_explain_smoke(tmp_path):
    result = bench_cli("explain", "--chars", "20000", "--units", "4")
    check_result(result, ["seconds", "search_ms", "units", "at_least_0.5", "at_least_0.8"], tmp_path)
    assert result["chars"] == 20000 and result["units"] == 16 and result["forms"] > 100


def test_bench_directions_smoke(tmp_path):
    result = bench_cli("directions", "--chars", "60000", "--switches", "2")
    check_result(result, ["probe_s", "sklearn_fit_s", "max_score_gap_vs_sklearn", "neuron_switch_ms"], tmp_path)
    assert result["probes"] > 0 and result["max_score_gap_vs_sklearn"] < 0.01  # scikit-learn fits the same probes


def test_bench_dashboard_smoke(tiny_checkpoint, cache, tmp_path):
    """On a synthetic store (no model recorded, as a user's own), in headless Chromium, then
    under stress on a recording of the tiny model."""
    from lstmviz.bench.dashboard import bench_dashboard

    result = bench_dashboard(
        chars=3000, switches=3, clients=2, per_client=3, units=8, checkpoint=str(tiny_checkpoint), stress_chars=2000
    )
    keys = ["switch_ms", "contexts_ms", "raw_read_ms", "paint_ms", "load_p95_ms", "stressed_load_p95_ms", "live_ms"]
    check_result(result, keys, tmp_path)
    assert result["load_errors"] == 0 and result["stressed_load_errors"] == 0 and result["paint_ms"] > 0


def test_bench_compare_smoke(tmp_path):
    result = bench_cli("compare", "--chars", "1000", "--units", "2", "--repeats", "1")
    check_result(result, ["seconds", "reference_seconds", "vs_reference", "vs_product", "peak_rss_mb"], tmp_path)
    assert result["series_a"] == result["series_b"] == 8 and result["peak_rss_mb"] > result["start_rss_mb"] > 0


def test_bench_scale_smoke(tiny_checkpoint, tmp_path):
    result = bench_cli("scale", "--checkpoint", str(tiny_checkpoint), "--chars", "1000", "--repeats", "1")
    check_result(result, ["single_s", "ray1_s", "ray2_s", "overhead_1", "record_s", "find_cells_s"], tmp_path)
    assert 0 < result["chars"] <= 1000 and result["documents"] >= 1  # the tiny model's test split is shorter


def test_bench_contrast_smoke(tiny_checkpoint, cache, tmp_path):
    result = bench_cli("contrast", "--checkpoint", str(tiny_checkpoint), "--top", "1")
    page = check_result(result, ["cells", "mean_before", "mean_default"], tmp_path)
    assert result["cells"] and "| feature | neuron | score | default |" in page


# -- the performance page ----------------------------------------------------------------------------

MACHINE = {"cpu": "AMD EPYC 7B13", "cores": 2, "memory_gb": 7.8, "system": "Linux x86_64", "python": "3.11.7"}
MACHINE |= {"torch": "2.13.0", "torch_threads": 2}
GIVEN = {
    "b.json": {
        "benchmark": "train",
        "measures": "our training loop beside a plain nn.LSTM loop: characters/s",
        "model": "2x384 lstm, batch 64 x 128",
        "chars_per_s": 9471,
        "ratio": 0.998,
        "runs": {"ours": [9471, 9480], "plain": [9487, 9490]},
        "targets": {"ratio": {"at_least": 0.95}},
        "machine": MACHINE,
        "recorded": "2026-12-03T14:33:02+00:00",
    },
    "a.json": {
        "benchmark": "record",
        "measures": "a whole recording beside the fused forward",
        "ratio_vs_fused": 0.61,
        "peak_rss_mb": 1650,
        "paint_ms": None,
        "targets": {
            "ratio_vs_fused": {"at_least": 0.7},
            "peak_rss_mb": {"at_most": 2000, "note": "recording 5,000,000 characters"},
            "paint_ms": {"at_most": 150},
        },
        "machine": MACHINE,
        "recorded": "2026-12-03T14:40:00+00:00",
    },
}


def test_the_performance_page_puts_each_figure_beside_its_target(tmp_path):
    from lstmviz.bench.report import main

    (tmp_path / "bench").mkdir()
    for name, given in GIVEN.items():
        jsonschema.validate(given, SCHEMA)
        (tmp_path / "bench" / name).write_text(json.dumps(given))
    main(["--results", str(tmp_path / "bench"), "--out", str(tmp_path / "performance.md")])
    page = (tmp_path / "performance.md").read_text().splitlines()
    at = page.index("## Targets")
    assert page[at + 2 : at + 8] == [
        "| benchmark | figure | measured | target | met | recorded |",
        "|---|---|---|---|---|---|",
        "| `train` | ratio | 0.998 | >= 0.95 | yes | 2026-12-03 14:33:02+00:00 |",  # the pipeline's order, not the files'
        "| `record` | ratio_vs_fused | 0.61 | >= 0.7 | **no** | 2026-12-03 14:40:00+00:00 |",
        "| `record` | peak_rss_mb | 1,650 | <= 2,000 (recording 5,000,000 characters) | yes | 2026-12-03 14:40:00+00:00 |",
        "| `record` | paint_ms | n/a | <= 150 | n/a | 2026-12-03 14:40:00+00:00 |",
    ]
    assert "Measured on AMD EPYC 7B13, 2 cores, 7.8 GB, torch 2.13.0 with 2 threads: `train`, `record`." in page
    train = page.index("## `lstmviz bench train`")
    assert page[train + 2 : train + 7] == [
        "Our training loop beside a plain nn.LSTM loop: characters/s.",
        "",
        "Recorded 2026-12-03 14:33:02+00:00 on AMD EPYC 7B13, 2 cores, 7.8 GB, torch 2.13.0 with 2 threads.",
        "",
        "- model: 2x384 lstm, batch 64 x 128",
    ]
    assert "| runs | ours 9,471 / 9,480; plain 9,487 / 9,490 |  |  |" in page
    assert "| chars_per_s | 9,471 |  |  |" in page and page.index("## `lstmviz bench record`") > train


def test_a_result_that_is_not_one_is_named(tmp_path):
    from lstmviz.bench.report import load_results
    from lstmviz.core.errors import LstmvizError

    (tmp_path / "dashboard.json").write_text('{"benchmark": "dashboard", "sw')  # a run that died while written
    with pytest.raises(LstmvizError, match="dashboard.json is not a benchmark result"):
        load_results(tmp_path)
    (tmp_path / "dashboard.json").write_text('{"benchmark": "dashboard"}')
    with pytest.raises(LstmvizError, match="it has no measures, targets, machine, recorded"):
        load_results(tmp_path)


def test_the_docs_performance_page_is_generated_from_the_stored_results():
    from lstmviz.bench.report import load_results, performance_page

    docs = Path(__file__).parents[1] / "docs"
    assert (docs / "performance.md").read_text() == performance_page(load_results(docs / "bench")), (
        "docs/performance.md is not what `python -m lstmviz.bench.report` makes of docs/bench/: run it"
    )


def test_bench_attribute_smoke(tiny_checkpoint, tmp_path):
    from lstmviz.bench.attribute import bench_attribute

    result = bench_attribute(str(tiny_checkpoint), window=20, repeats=1, unit=5)
    check_result(result, ["grad_ms", "ig_s", "captum_ig_s", "ig_ratio_vs_captum", "ig_default_s", "occlusion_s"], tmp_path)
    assert result["window"] == 20 and result["target"].startswith("L2.c.5 ")
    assert result["ig_completeness_error"] < 0.05


def test_bench_attribute_quality_smoke(tiny_checkpoint, tmp_path):
    from lstmviz.bench.attribute_quality import bench_attribute_quality

    result = bench_attribute_quality(str(tiny_checkpoint), positions=2, units={"string": "L2.c.5", "comment": "L1.c.5"})
    check_result(result, [], tmp_path)
    assert result["comment_positions"] == 2 and 0 <= result["comment_occlusion_top3"] <= 1
