"""A sparse dictionary of one series: a top-k sparse autoencoder (Gao et al. 2024, "Scaling and
evaluating sparse autoencoders"), written as SAELens's ``TopKSAE`` computes at inference, so
its weights load there unchanged (``store/dictionary_format.py``):

    f(x) = TopK(ReLU((x - b_dec) W_enc + b_enc))     # [..., features]: k non-zero at most
    x^(x) = f(x) W_dec + b_dec                       # [..., units]: the reconstruction

``W_enc`` [units, features], ``b_enc`` [features], ``W_dec`` [features, units], ``b_dec``
[units], named as SAELens names them. Feature k's value at a character is f_k(x); its
direction in the series is the row ``W_dec[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SparseDictionary:
    """The weights of a top-k dictionary over one series (``series``, e.g. ``L2.c``)."""

    W_enc: torch.Tensor  # [units, features]
    b_enc: torch.Tensor  # [features]
    W_dec: torch.Tensor  # [features, units]
    b_dec: torch.Tensor  # [units]
    k: int  # features active per character, at most
    series: str  # the series it reads and rebuilds, e.g. "L2.c"

    @property
    def units(self) -> int:
        return self.W_enc.shape[0]

    @property
    def size(self) -> int:
        """The number of features."""
        return self.W_enc.shape[1]

    def top_k(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [..., units] -> (values, indices) [..., k]: the k largest pre-activations and
        the features they belong to, values through ReLU (so some may be 0)."""
        pre = torch.addmm(self.b_enc, (x - self.b_dec).reshape(-1, self.units), self.W_enc)
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        shape = (*x.shape[:-1], self.k)
        return values.clamp_(min=0).view(shape), indices.view(shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., units] -> f(x) [..., features], all but k of each row 0."""
        values, indices = self.top_k(x)
        return torch.zeros(*x.shape[:-1], self.size, dtype=x.dtype, device=x.device).scatter_(-1, indices, values)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """f [..., features] -> x^ [..., units]."""
        return features @ self.W_dec + self.b_dec

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x^(x) [..., units], from the k active features' rows of W_dec (no dense f)."""
        values, indices = self.top_k(x)
        rows = self.W_dec[indices.reshape(-1)].view(*indices.shape, self.units)  # [..., k, units]
        return (values.unsqueeze(-1) * rows).sum(-2) + self.b_dec

    def to(self, device) -> SparseDictionary:
        moved = {name: getattr(self, name).to(device) for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
        return SparseDictionary(**moved, k=self.k, series=self.series)
