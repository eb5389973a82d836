"""The ``lstmviz`` command line: parse arguments, call the library, print tables or JSON.

Every :class:`LstmvizError` becomes one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import copy
import functools
import json
import signal
import sys
import threading
import time
import warnings

import click
import numpy as np

from ..analysis.ngram import DEFAULT_MAX_ORDER
from ..core.errors import LstmvizError
from ..store.format import DEFAULT_LANES
from ..store.reader import ActivationStore


def _user_errors(fn):
    """Turn user-facing errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LstmvizError as exc:
            click.echo(f"lstmviz: {exc}", err=True)
            sys.exit(2)

    return wrapper


RAY_HELP = "Run on the Ray cluster at ADDRESS (or, with no address, a local one): lstmviz[ray]."


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=1))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """See inside character-level recurrent networks."""
    # `kill` (SIGTERM) stops a command the way Ctrl-C does: training saves a resumable
    # checkpoint, a recording removes its unfinished store.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, *a, **k: f"lstmviz: warning: {msg}\n"


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint directory to write.")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn", "peephole", "cifg"]), default="lstm", show_default=True)
@click.option("--layers", "num_layers", default=2, show_default=True, help="Stacked recurrent layers.")
@click.option("--hidden", "hidden_size", default=256, show_default=True, help="Units per layer.")
@click.option("--embed", "embed_dim", default=64, show_default=True, help="Input embedding width.")
@click.option("--dropout", default=0.0, show_default=True)
@click.option("--seq-len", default=128, show_default=True, help="Characters per chunk (truncated BPTT).")
@click.option("--batch-size", default=64, show_default=True, help="Parallel lanes of documents.")
@click.option("--lr", default=2e-3, show_default=True, help="Adam peak learning rate (cosine decay).")
@click.option("--steps", type=int, default=None, help="Optimizer steps to train.")
@click.option("--epochs", type=float, default=None, help="Or: passes over the training split.")
@click.option("--grad-clip", default=5.0, show_default=True)
@click.option("--eval-every", default=250, show_default=True, help="Steps between validation runs.")
@click.option("--snapshots", default=0, show_default=True, help="Evenly spaced snapshot checkpoints to keep.")
@click.option("--min-char-count", default=1, show_default=True, help="Rarer characters become 'unknown'.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--save-every", "save_every_s", default=300.0, show_default=True, help="Seconds between resumable saves.")
@click.option("--resume", is_flag=True, help="Continue the unfinished run saved in --out.")
@_user_errors
def train(paths, out, resume, **options) -> None:
    """Train a character model on PATHS (files, folders, globs; default: the Python stdlib)."""
    from ..model.train import TrainConfig
    from ..model.train import train as run_training
    from ..text.corpus import load_corpus

    if options["steps"] is None and options["epochs"] is None:
        raise LstmvizError("Give the length of training: --steps N or --epochs E.")
    corpus = load_corpus(paths)
    if corpus.replaced_chars:
        click.echo(f"lstmviz: {corpus.replaced_chars} invalid UTF-8 byte sequence(s) were replaced.", err=True)
    cfg = TrainConfig(**options)
    sizes = corpus.describe()["chars"]
    click.echo(f"corpus: {len(corpus.documents)} documents, " + ", ".join(f"{k} {v:,} chars" for k, v in sizes.items()), err=True)
    run_training(corpus, out, cfg, resume=resume)
    click.echo(f"saved {out}", err=True)


@main.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option("--max-order", default=DEFAULT_MAX_ORDER, show_default=True, help="Highest n-gram order to try for the baseline.")
@click.option("--labels", type=click.Path(), default=None, help="A tagger's true classes for PATHS (JSON: a list per document).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_user_errors
def evaluate(checkpoint, paths, max_order, labels, as_json) -> None:
    """Bits per character of CHECKPOINT on its test split (or PATHS), beside an n-gram baseline;
    for a tagger (a bidirectional model), its accuracy on --labels."""
    from ..analysis.evaluate import evaluate as run_evaluation
    from ..model.checkpoint import load_checkpoint

    if not 1 <= max_order <= 20:
        raise LstmvizError("--max-order must be between 1 and 20.")
    result = run_evaluation(load_checkpoint(checkpoint), paths, max_order, labels)
    if as_json:
        _print_json(result)
        return
    if result.get("kind") == "tagger":
        click.echo(f"model:     {result['note']}.")
        if result["accuracy"] is None:
            click.echo("accuracy:  give --labels (and the text they belong to) to measure the head's accuracy")
        else:
            click.echo(f"accuracy:  {result['accuracy']:.2%} of {result['chars']:,} labelled characters")
        return
    base = result["baseline"]
    click.echo(f"text:      {result['text']} ({result['documents']} documents, {result['chars']:,} characters scored)")
    click.echo(f"model:     {result['bpc']:.4f} bits per character")
    click.echo(f"baseline:  {base['bpc']:.4f} ({base['order']}-gram, {base['name']}; best of orders 1-{max_order})")
    click.echo(f"the model is {result['improvement']:.1%} below the baseline")


@main.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option("--out", required=True, type=click.Path(), help="Store directory to write.")
@click.option("--max-chars", type=int, default=None, help="Record at most this many characters.")
@click.option("--lanes", default=DEFAULT_LANES, show_default=True, help="Documents recorded side by side (the batch).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--series", "kinds", default=None, help="Kinds to record, e.g. h,c (default: all; h,c is a third of the size).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]", help=RAY_HELP)
@click.option("--shards", type=int, default=None, help="With --ray: shards to write (default: one per worker).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_user_errors
def record(checkpoint, paths, out, max_chars, lanes, overwrite, kinds, device, ray_address, shards, as_json) -> None:
    """Record every state of every layer of CHECKPOINT over its test split (or PATHS) into a store
    (with --ray: a sharded store, recorded on a Ray cluster; a rerun resumes it)."""
    from ..analysis.evaluate import evaluation_documents
    from ..model.checkpoint import load_checkpoint
    from ..model.train import resolve_device
    from ..recording.recorder import check_files_fit, record_activations

    if max_chars is not None and max_chars < 1:
        raise LstmvizError("--max-chars must be a positive number of characters.")
    if lanes < 1:
        raise LstmvizError("--lanes must be at least 1.")
    ckpt = load_checkpoint(checkpoint, device=resolve_device(device))
    kinds = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds is not None else None
    if paths and max_chars is None:
        check_files_fit(ckpt, paths, out, kinds)  # before reading: a text too big to record is not read whole
    docs = evaluation_documents(ckpt, paths, max_chars)
    if shards is not None and (ray_address is None or shards < 1):
        raise LstmvizError("--shards needs --ray and must be at least 1.")
    t0 = time.perf_counter()  # until the store is on disk and in place
    if ray_address is not None:
        from ..scale.sharding import record_sharded
        from ..text.lanes import limit_chars

        options = {"shards": shards, "address": ray_address or None, "kinds": kinds, "lanes": lanes, "overwrite": overwrite}
        store = record_sharded(ckpt.path, limit_chars(docs, max_chars), out, **options)
    else:
        options = {"max_chars": max_chars, "lanes": lanes, "overwrite": overwrite, "kinds": kinds, "progress": not as_json}
        store = record_activations(ckpt, docs, out, **options)
    result = {
        "store": str(store.path),
        "chars": len(store),
        "documents": len(store.documents),
        "series": len(store.series),
        "neurons": store.rows,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if as_json:
        _print_json(result)
    else:
        click.echo(
            f"recorded {result['chars']:,} characters ({result['documents']} documents), {result['series']} series "
            f"({result['neurons']} neurons) in {result['seconds']:.1f} s into {result['store']}"
        )


@main.command("find-cells")
@click.argument("store", type=click.Path())
@click.option("--feature", "extra", multiple=True, metavar="NAME=REGEX", help="Add a feature marking regex matches.")
@click.option("--only", multiple=True, help="Rank only these features (repeatable).")
@click.option("--kinds", default=None, help="Series kinds to rank (default: h,c, the cells every page ranks; i,f,g,o add gates).")
@click.option("--top", "top_k", default=5, show_default=True, help="Neurons to show per feature.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]", help=RAY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_user_errors
def find_cells(store, extra, only, kinds, top_k, ray_address, as_json) -> None:
    """Rank every neuron of STORE against text features: which cells track strings, comments, indentation..."""
    from ..analysis.rankings import rank_neurons, ranked_kinds
    from ..store.open import open_store
    from ..text.features import parse_feature_option, store_features

    if top_k < 1:
        raise LstmvizError("--top must be at least 1.")
    opened = open_store(store)
    user = dict(parse_feature_option(opt) for opt in extra)
    names = list(only) or None
    feats = store_features(opened, user, names)
    kind_list = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else ranked_kinds(opened)
    if ray_address is None:
        rankings = rank_neurons(opened, feats, kind_list)
    else:  # shard by shard on the cluster: the same rankings to float rounding
        from ..scale.shard_rankings import rank_neurons_sharded

        rankings = rank_neurons_sharded(opened, feats, kind_list, ray_address or None)
    methods = sorted(set(feats.methods.values()))
    if as_json:
        _print_json(
            {
                "store": str(opened.path),
                "chars": len(opened),
                "neurons": sum(len(r.table) for r in rankings.values()) // max(len(rankings), 1),
                "feature_methods": {m: sum(v == m for v in feats.methods.values()) for m in methods},
                "features": {name: r.to_json(top_k) for name, r in rankings.items()},
            }
        )
        return
    click.echo(f"{opened.name}: {len(opened):,} characters; features by {', '.join(methods)}")
    for name, r in rankings.items():
        click.echo(f"\n{name} ({r.metric}; score = strength, value = signed)")
        click.echo(r.top(top_k).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@main.command("vs-ngram")
@click.argument("store", type=click.Path())
@click.option("--top", "top_k", default=15, show_default=True, help="Characters to show at each end.")
@click.option("--max-order", default=DEFAULT_MAX_ORDER, show_default=True, help="Highest n-gram order to try.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def vs_ngram(store, top_k, max_order, as_json) -> None:
    """Which characters the recurrent model predicts better than the n-gram, and worse (Karpathy et al., sec. 5)."""
    if top_k < 1 or not 1 <= max_order <= 20:
        raise LstmvizError("--top must be at least 1 and --max-order between 1 and 20.")
    from ..analysis.evaluate import error_analysis, ngram_for_store
    from ..model.checkpoint import load_checkpoint
    from ..store.open import open_store

    opened = open_store(store)
    ckpt = load_checkpoint(opened.checkpoint["path"])
    advantage, table = error_analysis(opened, ngram_for_store(opened, ckpt, max_order)[0])
    if as_json:
        rows = table.to_dict(orient="records")
        _print_json({"store": str(opened.path), "mean_advantage_bits": float(np.nanmean(advantage)), "by_char": rows})
        return
    shown = table.assign(char=table["char"].map(lambda c: {"\n": "\\n", " ": "space", "\t": "\\t"}.get(c, c)))
    click.echo(f"bits saved per character by the LSTM over the n-gram (mean {np.nanmean(advantage):+.3f}); best first:")
    click.echo(shown.head(top_k).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo("\n...and where the n-gram does better:")
    click.echo(shown.tail(top_k).iloc[::-1].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


# `errors` was this command's first name; it still works, unlisted.
main.add_command(copy.copy(vs_ngram), "errors")
main.commands["errors"].hidden = True


@main.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option("--neurons", required=True, help="Comma-separated neuron ids to replace, e.g. L2.c.90 or L1.c.5,L1.c.7.")
@click.option("--mode", default="zero", show_default=True, help="zero, mean (over the text) or clamp=VALUE.")
@click.option("--max-chars", type=int, default=50_000, show_default=True, help="Characters of the text to run on.")
@click.option("--controls", default=20, show_default=True, help="Random neuron sets of the same layer, kind and size.")
@click.option("--seed", default=0, show_default=True, help="Seed for drawing the control sets.")
@click.option("--top", "top_k", default=10, show_default=True, help="Characters and positions to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_user_errors
def ablate(checkpoint, paths, neurons, mode, max_chars, controls, seed, top_k, as_json) -> None:
    """Bits the model loses when NEURONS are replaced, per text feature, beside random control sets.

    Text: PATHS, else the checkpoint's test split. Teacher-forced: every character is predicted
    from the true text before it."""
    from tqdm.auto import tqdm

    from ..analysis.ablation import ablate as run_ablation
    from ..analysis.evaluate import evaluation_documents
    from ..model.checkpoint import load_checkpoint
    from ..model.interventions import Mode
    from ..text.lanes import limit_chars

    mode = Mode.parse(mode)
    if max_chars < 2:
        raise LstmvizError("--max-chars must be at least 2 characters.")
    if not 0 <= controls <= 200:
        raise LstmvizError("--controls must be between 0 and 200.")
    if top_k < 1:
        raise LstmvizError("--top must be at least 1.")
    ckpt = load_checkpoint(checkpoint)
    ckpt.model.require_next_character("be ablated (ablation counts the bits lost on the next character)")
    for n in neurons.split(","):
        if n.strip():
            ckpt.model.check_neuron(n)  # a bad id is an error before any text is read
    docs = limit_chars(evaluation_documents(ckpt, paths, max_chars), max_chars)
    bar = tqdm(total=1, disable=as_json, unit="char", unit_scale=True, desc="ablating", dynamic_ncols=True, leave=False)

    def report(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    data = run_ablation(ckpt, docs, neurons, mode, controls, seed, on_progress=report).to_json(top_k)
    bar.close()
    if as_json:
        _print_json(data)
    else:
        _print_ablation(data)


def _shown(ch: str) -> str:
    return {"\n": "\\n", " ": "space", "\t": "\\t"}.get(ch, ch)


def _print_ablation(data: dict) -> None:
    control = data["control"]
    click.echo(f"{', '.join(data['neurons'])} set to {data['mode']}, on {data['chars']:,} predicted characters")
    line = f"bits per character: {data['bpc']:.4f} -> {data['ablated_bpc']:.4f} ({data['bits_lost']:+.4f})"
    if control["sets"] > 1:
        line += (
            f"; {control['sets']} random sets alike: {control['ablated_bpc_mean']:.4f} +- {control['ablated_bpc_sd']:.4f} "
            f"({control['as_large']} of {control['sets']} lose as much)"
        )
    click.echo(line)

    def cell(value, mean=None, sd=None) -> str:
        if value is None:
            return f"{'-':>9}{'':>20}"
        ctl = f"{mean:+.4f} +- {sd:.4f}" if sd is not None else ""
        return f"{value:>+9.4f}  {ctl:>18}"

    click.echo("\nbits lost per predicted character, inside and outside each feature (controls: mean +- sd)")
    click.echo(f"  {'feature':<14}{'chars in':>9}{'inside':>9}  {'controls':>18}{'outside':>9}  {'controls':>18}")
    for name, f in data["by_feature"].items():
        click.echo(
            f"  {name:<14}{f['chars_inside']:>9,}"
            + cell(f["inside_bits"], f["control_inside_mean"], f["control_inside_sd"])
            + cell(f["outside_bits"], f["control_outside_mean"], f["control_outside_sd"])
        )
    click.echo("\ncharacters most affected (bits lost on average; controls' mean):")
    for c in data["top_chars"]:
        ctl = f"  (controls {c['control_bits_lost']:+.3f})" if c["control_bits_lost"] is not None else ""
        click.echo(f"  {_shown(c['char']):<6} {c['bits_lost']:+.3f} over {c['count']:,}{ctl}")
    click.echo("\npositions most affected:")
    for p in data["top_positions"]:
        context = (p["before"] + "[" + p["char"] + "]" + p["after"]).replace("\n", "\u23ce")
        click.echo(f"  {p['position']:>8}  {p['bits_lost']:+.3f}  {context}")


@main.command()
@click.argument("checkpoint", type=click.Path())
@click.option("--prime", default="", help="Text the model reads first (default: it starts at a new line).")
@click.option("--length", default=500, show_default=True, help="Characters to generate (at most 100,000).")
@click.option("--temperature", default=1.0, show_default=True, help="Below 1: surer and more repetitive; above 1: wilder.")
@click.option("--top-k", type=int, default=None, help="Draw only among the K likeliest characters.")
@click.option("--seed", default=0, show_default=True, help="The same seed gives the same text.")
@click.option("--clamp", "clamps", multiple=True, metavar="ID=VALUE", help="Hold a neuron at VALUE throughout (repeatable).")
@click.option("--ablate", "ablates", multiple=True, metavar="ID", help="Hold a neuron at 0 throughout (repeatable).")
@click.option("--color", default=None, metavar="ID", help="Colour the output by this neuron (default: the first held one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_user_errors
def sample(checkpoint, prime, length, temperature, top_k, seed, clamps, ablates, color, as_json) -> None:
    """Generate text from CHECKPOINT, as char-rnn's sample.lua, with neurons held throughout."""
    from ..core.neurons import parse_neurons
    from ..model.checkpoint import load_checkpoint
    from ..model.interventions import parse_assignments
    from ..model.sampling import sample as generate

    clamp = parse_assignments(clamps)
    ablate = [n for item in ablates for n in parse_neurons(item)]
    result = generate(load_checkpoint(checkpoint), prime, length, temperature, top_k, seed, clamp, ablate, color)
    if result.unknown:
        chars = "".join(result.unknown)
        click.echo(f"lstmviz: warning: the prime's {chars!r} are not in the model's vocabulary; read as unknown.", err=True)
    if as_json:
        _print_json(result.to_json())
    elif result.values is not None and sys.stdout.isatty():
        from ..analysis.distribution import stats_of
        from ..render.colours import scale_for
        from ..render.figures import ansi_coloured

        click.echo(ansi_coloured(result.text, result.values, scale_for(result.neuron, stats_of(result.values))))
        click.echo(f"(coloured by {result.neuron})", err=True)
    else:
        click.echo(result.text)


@main.command("import-torch")
@click.argument("state_dict", type=click.Path())
@click.option("--vocab", required=True, type=click.Path(), help="JSON list of characters (index = id) or {char: id}.")
@click.option("--out", required=True, type=click.Path(), help="Checkpoint directory to write.")
@_user_errors
def import_torch_command(state_dict, vocab, out) -> None:
    """Import a plain PyTorch character model (embedding or one-hot, nn.LSTM/GRU/RNN, linear decoder)."""
    from pathlib import Path

    from ..model.checkpoint import load_checkpoint
    from ..model.importer import import_torch

    if Path(out).exists():
        raise LstmvizError(f"{out} already exists; choose another --out.")
    ckpt = load_checkpoint(import_torch(state_dict, vocab, out))
    cfg = ckpt.model_config
    kind = f"bidirectional {cfg.cell.upper()} tagger ({cfg.num_labels} classes)" if cfg.bidirectional else cfg.cell.upper()
    click.echo(f"imported a {cfg.num_layers}x{cfg.hidden_size} {kind} with {len(ckpt.vocab)} characters into {out}")


@main.command()
@click.argument("store", type=click.Path())
@click.option("--neurons", required=True, help="Comma-separated neuron ids, e.g. L2.c.117,L1.h.3")
@click.option("--range", "char_range", required=True, help="Characters START:END, e.g. 0:300.")
@click.option("--out", required=True, type=click.Path(), help="A .png, .svg, .pdf or .html file.")
@click.option("--shared-scale", is_flag=True, help="One colour scale for all rows (default: each row its own).")
@_user_errors
def export(store, neurons, char_range, out, shared_scale) -> None:
    """Write the heatmap of NEURONS over a range of STORE's text to a file."""
    from ..render.colours import neuron_scales
    from ..render.export import write_figure
    from ..render.figures import export_width, heatmap_figure, parse_range
    from ..store.open import open_store

    opened = open_store(store)
    start, stop = parse_range(char_range, len(opened))
    ids = [n.strip() for n in neurons.split(",") if n.strip()]
    for n in ids:
        opened.row_of(n)  # a bad id is an error before any work
    scales = None if shared_scale else neuron_scales(opened, ids)
    figure = heatmap_figure(opened, ids, start, stop, scales, export_width(stop - start))
    click.echo(f"wrote {write_figure(figure, out)}")


@main.command()
@click.argument("store", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Folder to write (new, or empty).")
@click.option("--features", default=None, help="Comma-separated features to list (default: all).")
@click.option("--top", "top_k", default=3, show_default=True, help="Best cells listed per feature.")
@_user_errors
def report(store, out, features, top_k) -> None:
    """A static report of STORE's best cells: a folder that opens from file://, no server needed."""
    from ..render.report import write_report
    from ..store.open import open_store

    names = [f.strip() for f in features.split(",") if f.strip()] if features is not None else None
    folder = write_report(open_store(store), out, names, top_k)
    click.echo(f"wrote {folder / 'index.html'}")


@main.command("export-lstmvis")
@click.argument("store", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Project folder to write (new, or empty).")
@click.option("--kinds", default="h,c", show_default=True, help="Series kinds to export.")
@_user_errors
def export_lstmvis_command(store, out, kinds) -> None:
    """STORE as an LSTMVis project (lstm.yml, states, words, dictionary, feature tracks)."""
    from ..render.lstmvis import export_lstmvis
    from ..store.open import open_store

    folder = export_lstmvis(open_store(store), out, tuple(k.strip() for k in kinds.split(",") if k.strip()))
    click.echo(f"wrote {folder} (open it with LSTMVis: python lstm_server.py -dir {folder.parent})")


def _open_for_dashboard(path: str | None, progress: bool = True) -> tuple[ActivationStore, str]:
    """A store as given, or a checkpoint's test split recorded into the cache (once): its h
    and c, which every page starts on; the gates are recorded when a page asks for them. With
    the name the dashboard shows it by (a cached store's file name is a hash)."""
    from ..analysis.evaluate import evaluation_documents
    from ..recording.recorder import estimate
    from ..recording.sources import COMPARED_KINDS, open_source, recorded, uncached_bytes

    source = open_source(path)
    if isinstance(source, ActivationStore):
        return source, source.name
    name = f"{source.name} · test split"
    docs = evaluation_documents(source)
    if uncached_bytes([source], docs, COMPARED_KINDS):  # else cached (a whole recording serves as well)
        plan = estimate(source, sum(len(d.text) for d in docs), COMPARED_KINDS)
        click.echo(
            f"recording {source.name}'s test split once (later starts reuse it): {plan['chars']:,} characters, h and c, "
            f"about {plan['bytes'] / 1e9:.1f} GB, about {plan['seconds']:.0f} s; gates are recorded when a page asks for them",
            err=True,
        )
    return recorded(source, docs, kinds=COMPARED_KINDS, progress=progress), name


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise).")
@click.option("--port", default=8050, show_default=True)
@click.option("--token", default=None, help="Token required off loopback (default: a random one, printed in the URL).")
@click.option("--debug", is_flag=True, help="Dash debug mode (never on a shared network).")
@_user_errors
def serve(paths, host, port, token, debug) -> None:
    """Open the dashboard on stores or checkpoints (default: the shipped model's test split)."""
    import secrets

    from ..app import LOOPBACK, check_serving, create_app
    from ..app import serve as run_server

    check_serving(host, port, debug)  # before any recording: a refusal should not cost minutes
    if host not in LOOPBACK:
        token = token or secrets.token_urlsafe(24)
        click.echo(f"lstmviz: warning: serving on {host}: every store named here is readable by anyone with the token.", err=True)
    elif token is not None:
        click.echo("lstmviz: on loopback no token is asked for; --token is ignored.", err=True)
        token = None
    stores, names = zip(*(_open_for_dashboard(p) for p in (paths or [None])), strict=True)
    app = create_app(list(stores), list(names))
    for name in app.catalog.stores:
        app.catalog.prepare(name)  # before the first page is served (cached in the store)
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"lstmviz dashboard on {url}  (Ctrl-C stops it)", err=True)
    run_server(app, host=host, port=port, debug=debug, token=token)


def _compared_stores(a: str, b: str, paths: tuple[str, ...], max_chars: int | None, progress: bool = True):
    """Two stores on the same text: stores as given, checkpoints recorded (or reused from
    the cache) on PATHS, else on the text of a given store, else on A's test split."""
    from ..analysis.compare import same_text
    from ..analysis.evaluate import evaluation_documents
    from ..recording.sources import COMPARED_KINDS, open_source, recorded, store_documents, uncached_bytes
    from ..text.corpus import load_corpus
    from ..text.lanes import limit_chars

    sources = [open_source(a), open_source(b)]
    stores = [s for s in sources if isinstance(s, ActivationStore)]
    if paths:
        docs = load_corpus(list(paths)).documents
    elif stores:
        docs = store_documents(stores[0])
    else:
        docs = evaluation_documents(sources[0])
    docs = limit_chars(docs, max_chars)
    text = "".join(d.text for d in docs)
    out = []
    for source in sources:
        if isinstance(source, ActivationStore):
            same_text(source, text)  # before any recording starts
            out.append(source)
        else:
            if uncached_bytes([source], docs, COMPARED_KINDS):
                click.echo(f"recording {source.name}'s h and c on {len(text):,} characters (cached for next time)", err=True)
            out.append(recorded(source, docs, kinds=COMPARED_KINDS, progress=progress))
    return out


@main.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option("--max-chars", type=int, default=None, help="Compare on at most this many characters of the text.")
@click.option("--top", "top_k", default=10, show_default=True, help="Best-matched neuron pairs to list.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def compare(a, b, paths, max_chars, top_k, as_json) -> None:
    """Compare two checkpoints or stores on the same text: CKA, matched neurons, cells, loss.

    Text: PATHS if given, else the text of a given store, else A's test split."""
    if top_k < 1:
        raise LstmvizError("--top must be at least 1.")
    if max_chars is not None and max_chars < 1:
        raise LstmvizError("--max-chars must be a positive number of characters.")
    from ..analysis.compare import compare_stores

    store_a, store_b = _compared_stores(a, b, paths, max_chars)
    result = compare_stores(store_a, store_b)
    data = result.to_json()
    if as_json:
        _print_json(data)
        return
    click.echo(
        f"A = {data['a']['checkpoint']} ({data['a']['neurons']} h/c neurons), "
        f"B = {data['b']['checkpoint']} ({data['b']['neurons']}), on {data['chars']:,} characters"
    )
    for label in ("a", "b"):
        if data["dropped"][label]["chars"]:
            click.echo(
                f"  left out {data['dropped'][label]['chars']:,} characters {label.upper()} cannot read: "
                f"{''.join(data['dropped'][label]['distinct'])!r}"
            )
    click.echo("\nlinear CKA (rows: layers of A, columns: layers of B)")
    for layer, row in zip(data["cka_layers"]["a"], data["cka"], strict=True):
        click.echo(f"  L{layer}  " + "  ".join(f"{v:.3f}" for v in row))
    click.echo(f"\none-to-one assignment (Hungarian): mean |r| = {data['assignment_mean_r']:.3f}")
    best = sorted(data["matches"], key=lambda m: -abs(m["r"]))[:top_k]
    click.echo("best-matched neurons: " + ", ".join(f"{m['a']}~{m['b']} ({m['r']:+.3f})" for m in best))
    click.echo("\nbest cell per feature")
    for name, f in data["features"].items():
        click.echo(
            f"  {name:<14} A {f['a']['neuron']:<10} {f['a']['score']:.3f}   B {f['b']['neuron']:<10} {f['b']['score']:.3f}"
        )
    loss = data["loss"]
    if not loss["chars"]:
        return
    click.echo(
        f"\nbits per character: A {loss['bpc_a']:.4f}, B {loss['bpc_b']:.4f}; "
        f"B predicts {100 * loss['b_better_fraction']:.1f}% of characters better"
    )


@main.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option(
    "--max-chars", type=int, default=100_000, show_default=True, help="Characters of the text to record each snapshot on."
)
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def emergence(checkpoint, paths, max_chars, as_json) -> None:
    """When the cells appear: bpc and the best score per feature at every snapshot."""
    from ..analysis.compare import emergence as follow
    from ..analysis.evaluate import evaluation_documents
    from ..model.checkpoint import load_checkpoint
    from ..recording.sources import snapshot_recordings
    from ..text.corpus import load_corpus
    from ..text.lanes import limit_chars

    docs = load_corpus(list(paths)).documents if paths else evaluation_documents(load_checkpoint(checkpoint))
    data = follow(snapshot_recordings(checkpoint, limit_chars(docs, max_chars)))
    if as_json:
        _print_json(data)
        return
    names = list(data["features"])
    click.echo(f"{'step':>8} {'bpc':>7} " + " ".join(f"{n:>13}" for n in names))
    for k, step in enumerate(data["steps"]):
        click.echo(f"{step:>8} {data['bpc'][k]:>7.4f} " + " ".join(f"{data['features'][n][k]:>13.3f}" for n in names))


@main.group()
def cache() -> None:
    """Recordings kept for you (by serve, compare, emergence): list them or clear them."""


@cache.command("list")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def cache_list(as_json) -> None:
    """What the cache holds ($LSTMVIZ_CACHE, default ~/.cache/lstmviz), largest first."""
    from ..recording.sources import cache_entries, cache_root

    entries = cache_entries()
    if as_json:
        _print_json({"cache": str(cache_root()), "entries": [e.to_json() for e in entries]})
        return
    click.echo(f"{cache_root()}: {len(entries)} entries, {sum(e.bytes for e in entries) / 1e9:.2f} GB")
    for e in entries:
        click.echo(f"  {e.bytes / 1e9:8.2f} GB  {e.age_days:6.1f} days  {e.path.name}")


@cache.command("clear")
@click.option("--older-than", "days", type=float, default=None, help="Only entries not used for this many days.")
@_user_errors
def cache_clear(days) -> None:
    """Remove cached recordings (all, or those older than --older-than DAYS); one being written is left alone."""
    from ..recording.sources import clear_cache

    if days is not None and days < 0:
        raise LstmvizError("--older-than takes a number of days, 0 or more.")
    removed, freed, busy = clear_cache(days)
    click.echo(f"removed {removed} entries, {freed / 1e9:.2f} GB" + (f"; {busy} in use were kept" if busy else ""))


@main.group()
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
@_user_errors
def bench_train_command(checkpoint, steps, repeats, cells, as_json) -> None:
    """Training characters/s against a plain nn.LSTM loop (target ratio >= 0.95), or, with
    --cells, of each cell type beside the LSTM."""
    _at_least(steps=steps, repeats=repeats)
    from ..bench.cells import bench_cells
    from ..bench.train import bench_train

    if cells is not None:
        _report(bench_cells("train", _cell_list(cells), steps, repeats=repeats), as_json)
        return
    _report(bench_train(checkpoint, steps, repeats), as_json)


def _cell_list(cells: str) -> list[str]:
    return [c.strip() for c in cells.split(",") if c.strip()]


@bench.command("record")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--chars", default=100_000, show_default=True, help="Characters of the test split to record.")
@click.option("--lanes", default=DEFAULT_LANES, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--cells", default=None, help="Instead: cell types side by side on a small model, e.g. peephole,cifg.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def bench_record_command(checkpoint, chars, lanes, repeats, cells, as_json) -> None:
    """Full recording against the fused forward (ceiling) and an nn.LSTMCell loop with the input projection hoisted, or, with
    --cells, of each cell type beside the LSTM."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.cells import bench_cells
    from ..bench.record import bench_record

    if cells is not None:
        _report(bench_cells("record", _cell_list(cells), chars=chars, repeats=repeats), as_json)
        return
    _report(bench_record(checkpoint, chars, lanes, repeats), as_json)


@bench.command("scale")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option(
    "--chars", default=475_222, show_default=True, help="Characters of the test split to record and rank (default: all of it)."
)
@click.option("--repeats", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def bench_scale_command(checkpoint, chars, repeats, as_json) -> None:
    """Recording and find-cells in one process against a local Ray cluster with one and two workers."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.scale import bench_scale

    _report(bench_scale(checkpoint, chars, repeats), as_json)


@bench.command("intervene")
@click.option("--checkpoint", default=None, help="Default: the shipped model.")
@click.option("--chars", default=100_000, show_default=True, help="Characters of the test split to run.")
@click.option("--lanes", default=DEFAULT_LANES, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def bench_intervene_command(checkpoint, chars, lanes, repeats, as_json) -> None:
    """The exact intervention pass against a careful hand-written clamp loop, the fused forward and sampling."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.intervene import bench_intervene

    _report(bench_intervene(checkpoint, chars, lanes, repeats), as_json)


@bench.command("analysis")
@click.option("--store", default=None, help="A recorded store (default: synthetic activations over 1M stdlib characters).")
@click.option("--chars", default=1_000_000, show_default=True)
@click.option("--repeats", default=3, show_default=True, help="Rankings timed; the median is reported.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def bench_analysis_command(store, chars, repeats, as_json) -> None:
    """Ranking h and c of every layer against all features, beside scipy's rankdata and one matrix product per block."""
    _at_least(chars=chars, repeats=repeats)
    from ..bench.analysis import bench_analysis

    _report(bench_analysis(store, chars, repeats=repeats), as_json)


@bench.command("dashboard")
@click.option("--store", default=None, help="A recorded store (default: synthetic h, c over 1M stdlib characters).")
@click.option("--chars", default=1_000_000, show_default=True)
@click.option("--switches", default=30, show_default=True, help="Neuron switches timed one at a time.")
@click.option("--clients", default=20, show_default=True, help="Concurrent clients in the load test.")
@click.option("--per-client", default=50, show_default=True, help="Neuron switches per load-test client.")
@click.option("--no-browser", is_flag=True, help="Skip the paint measurement in headless Chromium.")
@click.option("--no-stress", is_flag=True, help="Skip the load test beside a recording and a catastrophic regex.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
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
@_user_errors
def bench_compare_command(chars, units, repeats, as_json) -> None:
    """The whole comparison beside the correlations a careful user writes: standardised series, one float32 product."""
    _at_least(chars=chars, units=units, repeats=repeats)
    from ..bench.compare import bench_compare

    _report(bench_compare(chars, units, repeats), as_json)


@bench.command("contrast")
@click.option("--checkpoint", default=None, help="Checkpoint recorded on its test split (default: the shipped model).")
@click.option("--top", default=3, show_default=True, help="Best cells of each binary feature measured.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
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


if __name__ == "__main__":
    main()
