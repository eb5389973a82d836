"""The benchmarks' command: each scenario beside its reference (``lstmviz.bench``)."""

from __future__ import annotations

import json

import click

from ..core.errors import LstmvizError
from ..core.options import comma_list
from ..store.format import DEFAULT_LANES


@click.group()
def bench() -> None:
    """Benchmarks: our code beside its reference, measured side by side in one run."""


def _at_least(**options: int) -> None:
    """A benchmark's counts: each must be at least the smallest that measures anything."""
    smallest = {"chars": 1000, "repeats": 1, "steps": 1, "units": 1, "switches": 1, "clients": 1, "per_client": 1}
    smallest["top"] = 1
    for name, value in options.items():
        if value is not None and value < smallest[name]:
            raise LstmvizError(f"--{name.replace('_', '-')} must be at least {smallest[name]:,}, not {value}.")


def _report(result: dict, as_json: bool) -> None:
    from ..bench.harness import format_table

    click.echo(json.dumps(result, indent=1) if as_json else format_table(result))


@bench.command("train")
@click.option("--checkpoint", default=None, help="Model settings to use (default: the shipped model).")
@click.option("--steps", default=20, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--cells", default=None, help="Instead: cell types side by side on a small model, e.g. peephole,cifg.")
@click.option("--json", "as_json", is_flag=True)
def bench_train_command(checkpoint, steps, repeats, cells, as_json) -> None:
    """Training characters/s against a plain nn.LSTM loop (target ratio >= 0.95), or, with
    --cells, of each cell type beside the LSTM."""
    _at_least(steps=steps, repeats=repeats)
    from ..bench.cells import bench_cells
    from ..bench.train import bench_train

    if cells is not None:
        _report(bench_cells("train", list(comma_list(cells)), steps, repeats=repeats), as_json)
        return
    _report(bench_train(checkpoint, steps, repeats), as_json)


@bench.command("record")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--chars", default=100_000, show_default=True, help="Characters of the test split to record.")
@click.option("--lanes", default=DEFAULT_LANES, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--cells", default=None, help="Instead: cell types side by side on a small model, e.g. peephole,cifg.")
@click.option("--json", "as_json", is_flag=True)
def bench_record_command(checkpoint, chars, lanes, repeats, cells, as_json) -> None:
    """Full recording against the fused forward (ceiling) and an nn.LSTMCell loop with the input projection hoisted, or, with
    --cells, of each cell type beside the LSTM."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.cells import bench_cells
    from ..bench.record import bench_record

    if cells is not None:
        _report(bench_cells("record", list(comma_list(cells)), chars=chars, repeats=repeats), as_json)
        return
    _report(bench_record(checkpoint, chars, lanes, repeats), as_json)


@bench.command("scale")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option(
    "--chars", default=475_222, show_default=True, help="Characters of the test split to record and rank (default: all of it)."
)
@click.option("--repeats", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_scale_command(checkpoint, chars, repeats, as_json) -> None:
    """Recording and find-cells in one process against a local Ray cluster with one and two workers."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.scale import bench_scale

    _report(bench_scale(checkpoint, chars, repeats), as_json)


@bench.command("attribute")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--window", default=200, show_default=True, help="Characters shared among.")
@click.option("--repeats", default=3, show_default=True)
@click.option(
    "--quality",
    "positions",
    type=int,
    default=None,
    metavar="N",
    help=("Instead: how often each method ranks the opening quote (and #) among the top three, over N positions."),
)
@click.option("--json", "as_json", is_flag=True)
def bench_attribute_command(checkpoint, window, repeats, positions, as_json) -> None:
    """Gradient x input, integrated gradients beside Captum's, and occlusion, for one position of the quote cell."""
    _at_least(repeats=repeats)
    if positions is not None:
        from ..bench.attribute_quality import bench_attribute_quality

        _report(bench_attribute_quality(checkpoint, positions), as_json)
        return
    from ..bench.attribute import bench_attribute

    _report(bench_attribute(checkpoint, window, repeats), as_json)


@bench.command("intervene")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--chars", default=100_000, show_default=True, help="Characters of the test split to run.")
@click.option("--lanes", default=DEFAULT_LANES, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_intervene_command(checkpoint, chars, lanes, repeats, as_json) -> None:
    """The exact intervention pass against a careful hand-written clamp loop, the fused forward and sampling."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.intervene import bench_intervene

    _report(bench_intervene(checkpoint, chars, lanes, repeats), as_json)


@bench.command("dictionary")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--chars", default=None, type=int, help="Characters of the test split (default: all of it).")
@click.option("--steps", default=1500, show_default=True)
@click.option("--layer", default=1, show_default=True, help="The layer whose c the dictionary reads.")
@click.option("--json", "as_json", is_flag=True)
def bench_dictionary_command(checkpoint, chars, steps, layer, as_json) -> None:
    """Training a sparse dictionary of 8 x 384 features on one series, beside SAELens's training step."""
    _at_least(chars=chars, steps=steps)
    from ..bench.dictionary import bench_dictionary

    _report(bench_dictionary(checkpoint, chars, steps, layer), as_json)


@bench.command("circuit")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--neuron", default="L2.c.90", show_default=True, help="The unit whose circuit is read.")
@click.option("--chars", type=int, default=None, help="Characters of the test split (default: all of it).")
@click.option("--repeats", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_circuit_command(checkpoint, neuron, chars, repeats, as_json) -> None:
    """One unit's circuit over the whole test split, beside every position's terms written out with np.einsum."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.circuit import bench_circuit

    _report(bench_circuit(checkpoint, neuron, chars, repeats), as_json)


@bench.command("analysis")
@click.option("--store", default=None, help="A recorded store (default: synthetic activations over 1M stdlib characters).")
@click.option("--chars", default=1_000_000, show_default=True)
@click.option("--repeats", default=3, show_default=True, help="Rankings timed; the median is reported.")
@click.option("--json", "as_json", is_flag=True)
def bench_analysis_command(store, chars, repeats, as_json) -> None:
    """Ranking h and c of every layer against all features, beside scipy's rankdata and one matrix product per block."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.analysis import bench_analysis

    _report(bench_analysis(store, chars, repeats=repeats), as_json)


@bench.command("explain")
@click.option("--store", default=None, help="A recorded store (default: the shipped model's h and c over its test split).")
@click.option("--chars", default=None, type=int, help="Instead: synthetic activations over this many stdlib characters.")
@click.option("--units", default=None, type=int, help="With --chars: units per layer (default: the shipped model's).")
@click.option("--json", "as_json", is_flag=True)
def bench_explain_command(store, chars, units, as_json) -> None:
    """Every h and c unit explained and scored (target: 5 minutes), and the search over the explanations (target: 100 ms)."""
    _at_least(chars=chars, units=units)
    from ..bench.explain import bench_explain

    _report(bench_explain(store, chars, units), as_json)


@bench.command("directions")
@click.option("--store", default=None, help="A recorded store (default: the shipped model's test split, h and c).")
@click.option("--chars", type=int, default=None, help="Instead: synthetic h, c over this many stdlib characters (a smoke run).")
@click.option("--switches", default=20, show_default=True, help="Switches to the neuron and to the direction timed.")
@click.option("--json", "as_json", is_flag=True)
def bench_directions_command(store, chars, switches, as_json) -> None:
    """Probes of every feature on every series beside scikit-learn's fits; painting a direction beside a neuron."""
    import tempfile

    from ..bench.directions import bench_directions

    if chars is not None:
        _at_least(chars=chars)
    _at_least(switches=switches)
    with tempfile.TemporaryDirectory() as tmp:
        _report(bench_directions(store, chars, switches, out=tmp), as_json)


@bench.command("dashboard")
@click.option("--store", default=None, help="A recorded store (default: synthetic h, c over 1M stdlib characters).")
@click.option("--chars", default=1_000_000, show_default=True)
@click.option("--switches", default=30, show_default=True, help="Neuron switches timed one at a time.")
@click.option("--clients", default=20, show_default=True, help="Concurrent clients in the load test.")
@click.option("--per-client", default=50, show_default=True, help="Neuron switches per load-test client.")
@click.option("--no-browser", is_flag=True, help="Skip the paint measurement in headless Chromium.")
@click.option("--no-stress", is_flag=True, help="Skip the load test beside a recording and a catastrophic regex.")
@click.option("--json", "as_json", is_flag=True)
def bench_dashboard_command(store, chars, switches, clients, per_client, no_browser, no_stress, as_json) -> None:
    """Neuron-switch and contexts server time against the raw read, paint time, and a load test."""
    _at_least(chars=chars, switches=switches, clients=clients, per_client=per_client)
    from ..bench.dashboard import bench_dashboard

    _report(bench_dashboard(store, chars, switches, clients, per_client, browser=not no_browser, stress=not no_stress), as_json)


@bench.command("compare")
@click.option("--chars", default=500_000, show_default=True)
@click.option("--units", default=256, show_default=True, help="Units per layer of the two 2-layer models.")
@click.option("--repeats", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_compare_command(chars, units, repeats, as_json) -> None:
    """The whole comparison beside the correlations a careful user writes: standardised series, one float32 product."""
    _at_least(chars=chars, units=units, repeats=repeats)
    from ..bench.compare import bench_compare

    _report(bench_compare(chars, units, repeats), as_json)


@bench.command("contrast")
@click.option("--checkpoint", default=None, help="Checkpoint recorded on its test split (default: the shipped model).")
@click.option("--top", default=3, show_default=True, help="Best cells of each binary feature measured.")
@click.option("--json", "as_json", is_flag=True)
def bench_contrast_command(checkpoint, top, as_json) -> None:
    """How distinct each feature's best cells look painted, under every colour scale."""
    _at_least(top=top)
    import pandas as pd

    from ..bench.contrast import bench_contrast

    result = bench_contrast(checkpoint, top)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{result['unit']}; store {result['store']}")
    click.echo(pd.DataFrame(result["cells"]).to_string(index=False))
    click.echo(f"mean: before (symmetric) {result['mean_before']}, default {result['mean_default']}")
