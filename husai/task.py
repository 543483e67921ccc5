"""The modular-addition task of Nanda et al. (2023): predict (a + b) mod p from ``[a, b, =]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# torch is imported where it is used: params validation (husai.config reads N_CTX)
# must not load it
if TYPE_CHECKING:
    import torch

N_CTX = 3
"""Tokens per example: ``[a, b, =]``."""


@dataclass(frozen=True)
class ModularAddition:
    """Every pair (a, b) with 0 <= a, b < p, once, in row order ``a * p + b``.

    ``tokens`` is ``[p*p, 3]`` with ``=`` as token id ``p``; ``labels`` is
    ``(a + b) mod p``; ``train_idx`` / ``test_idx`` are sorted, disjoint row
    indices that together cover every row.
    """

    p: int
    tokens: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor

    @property
    def a(self) -> torch.Tensor:
        return self.tokens[:, 0]

    @property
    def b(self) -> torch.Tensor:
        return self.tokens[:, 1]

    @property
    def equals_token(self) -> int:
        return self.p


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[p*p, 3]`` and labels ``[p*p]`` for every pair, row ``a * p + b``."""
    import torch

    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    return tokens, (a + b) % p


def split_indices(n: int, frac_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into sorted train and test indices.

    The train set has ``round(frac_train * n)`` rows. The permutation comes from
    ``torch.randperm`` on a CPU generator seeded with ``seed``, so the split
    depends on nothing but (n, frac_train, seed).
    """
    import torch

    from husai.determinism import generator

    perm = torch.randperm(n, generator=generator(seed))
    n_train = round(frac_train * n)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


def make_task(p: int, frac_train: float, seed: int) -> ModularAddition:
    """The full task for modulus ``p`` with a seeded train/test split."""
    tokens, labels = all_pairs(p)
    train_idx, test_idx = split_indices(p * p, frac_train, seed)
    return ModularAddition(p, tokens, labels, train_idx, test_idx)
