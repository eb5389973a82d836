"""Commands that make or measure a model: train, evaluate, import-torch."""

from __future__ import annotations

import click

from ..analysis.ngram import DEFAULT_MAX_ORDER
from ..core.errors import LstmvizError
from ..core.options import MAX_ORDER
from .common import checked, print_json


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint directory to write.")
@click.option("--corpus", "corpus_name", default=None, help="Instead of PATHS: python-stdlib (the default) or stdlib-prose.")
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
def train(paths, out, corpus_name, resume, **options) -> None:
    """Train a character model on PATHS (files, folders, globs) or a named --corpus (default:
    the Python stdlib's code)."""
    from ..model.train import TrainConfig
    from ..model.train import train as run_training
    from ..text.corpus import load_corpus, named_corpus

    cfg = TrainConfig(**options)
    cfg.check_length()  # before the text is read
    if paths and corpus_name is not None:
        raise LstmvizError("Give the text as PATHS or as --corpus NAME, not both.")
    corpus = named_corpus(corpus_name) if corpus_name is not None else load_corpus(paths)
    if corpus.replaced_chars:
        click.echo(f"lstmviz: {corpus.replaced_chars} invalid UTF-8 byte sequence(s) were replaced.", err=True)
    sizes = corpus.describe()["chars"]
    click.echo(f"corpus: {len(corpus.documents)} documents, " + ", ".join(f"{k} {v:,} chars" for k, v in sizes.items()), err=True)
    run_training(corpus, out, cfg, resume=resume)
    click.echo(f"saved {out}", err=True)


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("paths", nargs=-1)
@click.option(
    "--max-order",
    default=DEFAULT_MAX_ORDER,
    show_default=True,
    callback=checked(MAX_ORDER),
    help="Highest n-gram order to try for the baseline.",
)
@click.option("--labels", type=click.Path(), default=None, help="A tagger's true classes for PATHS (JSON: a list per document).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(checkpoint, paths, max_order, labels, as_json) -> None:
    """Bits per character of CHECKPOINT on its test split (or PATHS), beside an n-gram baseline;
    for a tagger (a bidirectional model), its accuracy on --labels."""
    from ..analysis.evaluate import evaluate as run_evaluation
    from ..model.checkpoint import load_checkpoint

    result = run_evaluation(load_checkpoint(checkpoint), paths, max_order, labels)
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(result.to_text())


@click.command("import-torch")
@click.argument("state_dict", type=click.Path())
@click.option("--vocab", required=True, type=click.Path(), help="JSON list of characters (index = id) or {char: id}.")
@click.option("--out", required=True, type=click.Path(), help="Checkpoint directory to write.")
def import_torch_command(state_dict, vocab, out) -> None:
    """Import a plain PyTorch character model (embedding or one-hot, nn.LSTM/GRU/RNN, linear decoder)."""
    from ..model.checkpoint import load_checkpoint
    from ..model.importer import import_torch

    ckpt = load_checkpoint(import_torch(state_dict, vocab, out))
    click.echo(f"imported {ckpt.describe()} into {out}")


COMMANDS = [train, evaluate, import_torch_command]
