"""The command that asks why: attribute (which earlier characters made a unit, or a
next-character prediction, what it is at a position)."""

from __future__ import annotations

import click

from ..core.options import IG_STEPS, TOP, WINDOW
from .common import checked, print_json


@click.command()
@click.argument("source", type=click.Path())
@click.option("--neuron", default=None, help="The unit to explain, e.g. L2.c.90 (any series: h, c, a gate).")
@click.option("--logit", default=None, metavar="CHAR", help="Explain the log-probability of this next character instead.")
@click.option("--pos", type=int, required=True, help="The position: in TEXT, else in the store's text, else the test split.")
@click.option("--text", default=None, help="The text the position is in (default: the store's, or the checkpoint's test split).")
@click.option(
    "--method",
    type=click.Choice(["ig", "grad", "occlusion"]),
    default="ig",
    show_default=True,
    help=("ig: integrated gradients; grad: gradient x input (fast); occlusion: each character replaced, rerun exactly."),
)
@click.option("--window", default=200, show_default=True, callback=checked(WINDOW), help="Characters before POS to share among.")
@click.option(
    "--steps", type=int, default=None, callback=checked(IG_STEPS), help="Integrated gradients' path points (default 64)."
)
@click.option("--baseline", default=None, metavar="CHAR", help="Compare with this character, not the zero embedding.")
@click.option("--top", "top_k", default=5, show_default=True, callback=checked(TOP), help="Characters (and units) to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def attribute(source, neuron, logit, pos, text, method, window, steps, baseline, top_k, as_json) -> None:
    """How much each character before --pos in SOURCE (a checkpoint or a store) made --neuron
    what it is there, or gave the next character --logit its log-probability (then also the
    units behind that prediction)."""
    from ..analysis.attribution import attribute as run_attribution
    from ..analysis.attribution.prediction import why_prediction

    result = run_attribution(
        source, neuron, pos=pos, logit=logit, text=text, method=method, window=window, steps=steps, baseline=baseline
    )
    reasons = why_prediction(source, pos, logit, text) if logit is not None else None
    if as_json:
        data = result.to_json()
        if reasons is not None:
            data["units"] = reasons.to_json(top_k)
        print_json(data)
    else:
        click.echo(result.to_text(top_k))
        if reasons is not None:
            click.echo(reasons.to_text(top_k))


COMMANDS = [attribute]
