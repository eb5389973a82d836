"""What the explainer says of each unit, as JSON and text, and the search over it: a query's
words, each found in a unit's explanation (or its id), best-scored first."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EXPLAINED_AT = 0.3  # a best held-out score below this explains nothing: the unit is reported unexplained


@dataclass
class Candidate:
    """One explanation tried for a unit: its words, structured form, fitted map and scores."""

    explanation: str
    form: dict
    score: float  # held-out correlation
    fit_score: float  # on the half it was fitted on (the choice is made by this)
    map: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "explanation": self.explanation,
            "form": self.form,
            "score": round(self.score, 4),
            "fit_score": round(self.fit_score, 4),
        }


@dataclass
class UnitExplanation:
    """The explanation of one unit: the candidate that fitted best, scored on held-out text."""

    neuron: str
    best: Candidate
    baseline_score: float  # the same explanation on the held-out text shuffled
    precision: float | None  # binary explanations only
    recall: float | None
    candidates: list[Candidate]

    @property
    def explained(self) -> bool:
        return bool(self.best.score >= EXPLAINED_AT)

    @property
    def explanation(self) -> str:
        return self.best.explanation if self.explained else f"unexplained (closest: {self.best.explanation})"

    @property
    def score(self) -> float:
        return self.best.score

    def to_json(self) -> dict:
        out = {
            "neuron": self.neuron,
            "explanation": self.explanation,
            "explained": self.explained,
            "form": self.best.form,
            "map": self.best.map,
            "score": round(self.score, 4),
            "fit_score": round(self.best.fit_score, 4),
            "baseline_score": round(self.baseline_score, 4),
        }
        if self.precision is not None:
            out |= {"precision": round(self.precision, 4), "recall": round(self.recall, 4)}
        return out | {"candidates": [c.to_json() for c in self.candidates]}

    @classmethod
    def from_json(cls, data: dict) -> UnitExplanation:
        candidates = [Candidate(c["explanation"], c["form"], c["score"], c["fit_score"]) for c in data["candidates"]]
        best = next(c for c in candidates if c.form == data["form"])
        best.map = data["map"]
        return cls(data["neuron"], best, data["baseline_score"], data.get("precision"), data.get("recall"), candidates)

    def line(self) -> str:
        pr = f", precision {self.precision:.2f} recall {self.recall:.2f}" if self.precision is not None else ""
        return f"{self.neuron:>10}  {self.score:5.2f}  (shuffled {self.baseline_score:+.2f}{pr})  {self.explanation}"


def _terms(query: str) -> list[str]:
    return [t for t in re.split(r"[\s`'\"]+", query.lower()) if t]


@dataclass
class Explanations:
    """Every explained unit of a store, in the store's order."""

    store: str
    units: list[UnitExplanation]

    def get(self, neuron: str) -> UnitExplanation | None:
        return next((u for u in self.units if u.neuron == str(neuron)), None)

    def search(self, query: str) -> list[UnitExplanation]:
        """The units whose explanation (or id) holds every word of ``query``, best-scored
        first; every unit, best first, for an empty query."""
        terms = _terms(query)
        found = [u for u in self.units if all(t in f"{u.neuron} {u.explanation}".lower().replace("`", "") for t in terms)]
        return sorted(found, key=lambda u: -u.score)

    def counts(self) -> dict:
        """How many units score at least 0.5 and 0.8, of how many."""
        scores = [u.score for u in self.units]
        return {
            "units": len(scores),
            "at_least_0.5": sum(s >= 0.5 for s in scores),
            "at_least_0.8": sum(s >= 0.8 for s in scores),
        }

    def to_json(self) -> dict:
        return {"store": self.store, **self.counts(), "units": [u.to_json() for u in self.units]}

    def to_text(self) -> str:
        c = self.counts()
        head = f"{self.store}: {c['units']} units; held-out score >= 0.5: {c['at_least_0.5']}, >= 0.8: {c['at_least_0.8']}"
        return "\n".join([head, f"{'unit':>10}  score  explanation", *(u.line() for u in self.units)])
