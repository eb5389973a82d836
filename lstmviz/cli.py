"""The ``lstmviz`` command line: parse arguments, call the library, print tables or JSON.

Every :class:`LstmvizError` becomes one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings

import click

from .errors import LstmvizError


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


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=1))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """See inside character-level recurrent networks."""
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, *a, **k: f"lstmviz: warning: {msg}\n"


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint directory to write.")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default="lstm", show_default=True)
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
@click.option("--resume", is_flag=True, help="Continue the unfinished run saved in --out.")
@_user_errors
def train(paths, out, resume, **options) -> None:
    """Train a character model on PATHS (files, folders, globs; default: the Python stdlib)."""
    from .corpus import load_corpus
    from .train import TrainConfig, train as run_training

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


if __name__ == "__main__":
    main()
