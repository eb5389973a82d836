"""Commands that change what a model computes: ablate (teacher-forced), sample (free-running)."""

from __future__ import annotations

import sys

import click

from ..core.options import CONTROLS, LINE_LENGTH_SEEDS, MAX_CHARS, TOP
from .common import checked, print_json


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option(
    "--neurons",
    required=True,
    help="Comma-separated neuron ids to replace, e.g. L2.c.90 or L1.c.5,L1.c.7; or directions, e.g. L2.c~in_string; "
    "or dictionary features, e.g. L1.c#17.",
)
@click.option("--mode", default="zero", show_default=True, help="zero, mean (over the text) or clamp=VALUE.")
@click.option(
    "--store",
    "store_path",
    default=None,
    help="The store that keeps the directions (lstmviz probe) or dictionary features (lstmviz dictionary) --neurons names.",
)
@click.option(
    "--max-chars",
    type=int,
    default=50_000,
    show_default=True,
    callback=checked(MAX_CHARS),
    help="Characters of the text to run on.",
)
@click.option(
    "--controls",
    default=20,
    show_default=True,
    callback=checked(CONTROLS),
    help="Random neuron sets of the same layer, kind and size.",
)
@click.option("--seed", default=0, show_default=True, help="Seed for drawing the control sets.")
@click.option("--top", "top_k", default=10, show_default=True, callback=checked(TOP), help="Characters and positions to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ablate(checkpoint, paths, neurons, mode, store_path, max_chars, controls, seed, top_k, as_json) -> None:
    """Bits the model loses when NEURONS are replaced, per text feature, beside random control sets.

    Text: PATHS, else the checkpoint's test split. Teacher-forced: every character is predicted
    from the true text before it. A direction (L2.c~in_string) has its projection replaced
    (zero: projected out), beside random directions of its series whose projections vary as
    much over --store as the direction's; a dictionary feature
    (L1.c#17) is removed from its series (zero) or held (clamp=V), beside random features."""
    from tqdm.auto import tqdm

    from ..analysis.ablation import ablate as run_ablation
    from ..analysis.ablation import ablation_targets, direction_vectors, feature_dictionary, series_covariance
    from ..core.errors import LstmvizError
    from ..core.neurons import DirectionId, NeuronId
    from ..model.checkpoint import load_checkpoint
    from ..model.interventions import Mode
    from ..recording.one_text import evaluation_documents
    from ..text.lanes import limit_chars

    mode = Mode.parse(mode)
    ckpt = load_checkpoint(checkpoint)
    targets = ablation_targets(ckpt, neurons)  # a bad id is an error before any text is read
    vectors = dictionary = covariances = None
    if not isinstance(targets[0], NeuronId):
        if store_path is None:
            what = "a direction" if isinstance(targets[0], DirectionId) else "a dictionary feature"
            raise LstmvizError(f"{targets[0]} is {what}: give --store, the store that keeps it.")
        from ..store.open import open_store

        store = open_store(store_path)
        if isinstance(targets[0], DirectionId):
            vectors = direction_vectors(store, ckpt, targets)
            covariances = {d.series: series_covariance(store, d) for d in targets}  # variance-matched controls
        else:
            dictionary = feature_dictionary(store, ckpt, targets)
    docs = limit_chars(evaluation_documents(ckpt, paths, max_chars), max_chars)
    # The bar stays once done (as record's): a cleared one leaves a line of spaces before
    # the output wherever stderr and stdout meet (a notebook, a log).
    with tqdm(total=1, disable=as_json, unit="char", unit_scale=True, desc="ablating", dynamic_ncols=True) as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = run_ablation(
            ckpt,
            docs,
            targets,
            mode,
            controls,
            seed,
            on_progress=report,
            vectors=vectors,
            dictionary=dictionary,
            covariances=covariances,
        )
    if as_json:
        print_json(result.to_json(top_k))
    else:
        click.echo(result.to_text(top_k))


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.option("--prime", default="", help="Text the model reads first (default: it starts at a new line).")
@click.option("--length", default=500, show_default=True, help="Characters to generate (at most 100,000).")
@click.option("--temperature", default=1.0, show_default=True, help="Below 1: surer and more repetitive; above 1: wilder.")
@click.option("--top-k", type=int, default=None, help="Draw only among the K likeliest characters.")
@click.option("--seed", default=0, show_default=True, help="The same seed gives the same text.")
@click.option(
    "--clamp",
    "clamps",
    multiple=True,
    metavar="ID=VALUE",
    help="Hold a neuron, or a dictionary feature (L1.c#17, with --store), at VALUE throughout (repeatable).",
)
@click.option(
    "--ablate",
    "ablates",
    multiple=True,
    metavar="ID",
    help="Hold a neuron at 0, or remove a dictionary feature (with --store), throughout (repeatable).",
)
@click.option("--color", default=None, metavar="ID", help="Colour the output by this neuron (default: the first held one).")
@click.option(
    "--line-lengths",
    "seeds",
    type=int,
    default=None,
    metavar="N",
    callback=checked(LINE_LENGTH_SEEDS),
    help="Instead of a text: the mean line length over N seeds from --seed, held and with nothing held.",
)
@click.option(
    "--steer",
    "steers",
    multiple=True,
    metavar="DIRECTION=ALPHA",
    help="Add ALPHA times a direction (or a dictionary feature's decoder row: L1.c#17=5) throughout.",
)
@click.option("--project-out", "removed", multiple=True, metavar="DIRECTION", help="Remove a direction throughout.")
@click.option("--store", "store_path", default=None, help="The store that keeps the directions and dictionary features named.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sample(
    checkpoint, prime, length, temperature, top_k, seed, clamps, ablates, color, seeds, steers, removed, store_path, as_json
):
    """Generate text from CHECKPOINT, as char-rnn's sample.lua, with neurons held (or directions
    steered or removed) throughout."""
    from ..core.neurons import parse_neurons
    from ..model.checkpoint import load_checkpoint
    from ..model.interventions import parse_assignments
    from ..model.sampling import sample as generate

    held, clamps = _features_of(clamps)
    removed_features, ablates = _features_of(ablates)
    clamp = parse_assignments(clamps)
    ablate = [n for item in ablates for n in parse_neurons(item)]
    ckpt = load_checkpoint(checkpoint)
    if seeds is not None:
        if held or removed_features:
            from ..core.errors import LstmvizError

            raise LstmvizError("--line-lengths holds neurons only; sample with a dictionary feature held without it.")
        _line_lengths(ckpt, prime, length, temperature, top_k, range(seed, seed + seeds), clamp, ablate, as_json)
        return
    hooks = _direction_hooks(ckpt, steers, removed, store_path) if steers or removed else []
    hooks += _feature_hooks(ckpt, held, removed_features, store_path) if held or removed_features else []
    result = generate(ckpt, prime, length, temperature, top_k, seed, clamp, ablate, color, hooks or None)
    if result.unknown:
        chars = "".join(result.unknown)
        click.echo(f"lstmviz: warning: the prime's {chars!r} are not in the model's vocabulary; read as unknown.", err=True)
    if as_json:
        print_json(result.to_json())
    elif result.values is not None and sys.stdout.isatty():
        from ..analysis.distribution import stats_of
        from ..render.colours import scale_for
        from ..render.figures import ansi_coloured

        click.echo(ansi_coloured(result.text, result.values, scale_for(result.neuron, stats_of(result.values))))
        click.echo(f"(coloured by {result.neuron})", err=True)
    else:
        click.echo(result.text)


def _line_lengths(ckpt, prime, length, temperature, top_k, seeds, clamp, ablate, as_json) -> None:
    """``sample --line-lengths``: the lines written with nothing held, then with the holds."""
    from ..analysis.line_lengths import line_lengths, line_lengths_text

    settings = [({}, [])] + ([(clamp, ablate)] if clamp or ablate else [])
    rows = [line_lengths(ckpt, list(seeds), c, a, prime, length, temperature, top_k) for c, a in settings]
    if as_json:
        print_json({"length": length, "temperature": temperature, "settings": [r.to_json() for r in rows]})
    else:
        click.echo(line_lengths_text(rows, length))


def _direction_hooks(ckpt, steers, removed, store_path) -> list:
    """The exact hooks that steer (``L2.c~in_string=5``; a dictionary feature ``L1.c#17=5``:
    5 times its row of W_dec) or remove directions, their vectors read from the store
    ``lstmviz probe`` or ``lstmviz dictionary`` kept them in."""
    from ..analysis.ablation import direction_vectors, feature_dictionary
    from ..core.errors import LstmvizError
    from ..core.neurons import DirectionId, FeatureId, parse_unit
    from ..core.options import comma_list
    from ..model.interventions import project_out, steer, steer_feature
    from ..store.open import open_store

    if store_path is None:
        raise LstmvizError(
            "--steer and --project-out name directions: give --store, the store lstmviz probe "
            "(or lstmviz dictionary) kept them in."
        )
    wanted = [(parse_unit(item.partition("=")[0]), item.partition("=")[2]) for s in steers for item in comma_list(s)]
    wanted += [(parse_unit(item), None) for r in removed for item in comma_list(r)]
    if not all(isinstance(u, DirectionId) or (isinstance(u, FeatureId) and alpha is not None) for u, alpha in wanted):
        raise LstmvizError(
            "--steer takes directions (L2.c~in_string=5) or dictionary features (L1.c#17=5) and --project-out "
            "directions (neurons: --clamp, --ablate; features: --ablate)."
        )
    for u, _ in wanted:
        ckpt.model.check_neuron(f"{u.series}.0")  # the model has its series
    store = open_store(store_path)
    directions = [u for u, _ in wanted if isinstance(u, DirectionId)]
    vectors = direction_vectors(store, ckpt, directions) if directions else {}
    features = [u for u, _ in wanted if isinstance(u, FeatureId)]
    dictionary = feature_dictionary(store, ckpt, features) if features else None
    hooks = []
    for u, alpha in wanted:
        if isinstance(u, FeatureId):
            hooks += steer_feature(dictionary, u.feature, alpha)
        else:
            hooks += project_out(u, vectors[u]) if alpha is None else steer(u, vectors[u], alpha)
    return hooks


def _features_of(items) -> tuple[list[str], list[str]]:
    """``--clamp``/``--ablate`` items split into dictionary features (``L1.c#17=5``) and the rest."""
    from ..core.options import comma_list

    parts = [part for item in items for part in comma_list(item)]
    return [p for p in parts if "#" in p], [p for p in parts if "#" not in p]


def _feature_hooks(ckpt, held: list[str], removed: list[str], store_path) -> list:
    """The exact hooks that hold dictionary features at a value (``L1.c#17=5``) or remove them
    (``interventions.edit_features``), their dictionaries read from the store that keeps them."""
    from ..analysis.ablation import feature_dictionary
    from ..core.errors import LstmvizError
    from ..core.neurons import FeatureId, NeuronId, parse_unit
    from ..model.interventions import edit_features, parse_assignments
    from ..store.open import open_store

    if store_path is None:
        raise LstmvizError("--clamp and --ablate name dictionary features here: give --store, the store that keeps them.")
    values = {parse_unit(f): 0.0 for f in removed} | parse_assignments(held, "--clamp", parse=parse_unit)
    if not all(isinstance(f, FeatureId) for f in values):
        raise LstmvizError("--clamp and --ablate take neurons (L2.c.90) or dictionary features (L1.c#17).")
    store, hooks = open_store(store_path), []
    for series in sorted({f.series for f in values}):
        features = [f for f in values if f.series == series]
        ckpt.model.check_neuron(NeuronId.parse(f"{series}.0"))  # the model has its series
        dictionary = feature_dictionary(store, ckpt, features)
        hooks += edit_features(dictionary, {f.feature: values[f] for f in features})
    return hooks


COMMANDS = [ablate, sample]
