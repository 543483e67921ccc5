"""The modular-addition dataset and its split."""

from __future__ import annotations

import pytest
import torch

from husai.task import all_pairs, make_task, split_indices


@pytest.mark.parametrize("p", [3, 23, 113])
def test_every_pair_once_with_the_right_label(p: int) -> None:
    tokens, labels = all_pairs(p)
    assert tokens.shape == (p * p, 3)
    pairs = {(int(a), int(b)) for a, b, _ in tokens}
    assert len(pairs) == p * p  # every pair present, none twice
    assert torch.equal(labels, (tokens[:, 0] + tokens[:, 1]) % p)
    # row order is a * p + b
    assert torch.equal(tokens[:, 0] * p + tokens[:, 1], torch.arange(p * p))


def test_the_answer_is_never_in_the_input() -> None:
    p = 23
    task = make_task(p, 0.5, 0)
    # the input is exactly [a, b, =]: operands, then the '=' token (id p), never the answer
    assert task.tokens.shape[1] == 3
    assert torch.all(task.tokens[:, 2] == p)
    assert task.tokens[:, :2].max() < p  # '=' (and anything >= p) never among the operands


def test_split_is_disjoint_complete_and_sized() -> None:
    task = make_task(23, 0.4, 598)
    train, test = set(task.train_idx.tolist()), set(task.test_idx.tolist())
    assert not train & test
    assert train | test == set(range(23 * 23))
    assert len(train) == round(0.4 * 23 * 23)
    assert torch.equal(task.train_idx, task.train_idx.sort().values)


def test_split_is_seeded_and_stable() -> None:
    a1, b1 = split_indices(100, 0.3, seed=7)
    a2, b2 = split_indices(100, 0.3, seed=7)
    a3, _ = split_indices(100, 0.3, seed=8)
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert not torch.equal(a1, a3)
    # pinned: a change of RNG or algorithm that moves the split must be deliberate
    train, _ = split_indices(25, 0.4, seed=598)
    assert train.tolist() == GOLDEN_TRAIN_25


GOLDEN_TRAIN_25 = [1, 5, 8, 9, 16, 17, 18, 22, 23, 24]  # torch 2.13.0 randperm, seed 598
