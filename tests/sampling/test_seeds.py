"""SeedLoader: every training node once per epoch, batches fixed by (seed, epoch), bad sizes rejected."""
from __future__ import annotations

import pytest
import torch

from gnndist.sampling import SeedLoader


def test_every_seed_once_per_epoch_in_batches_of_the_size():
    train_ids = torch.arange(100, 203)
    loader = SeedLoader(train_ids, 10, seed=0)
    batches = list(loader.batches(0))
    assert len(batches) == len(loader) == 11
    assert [b.numel() for b in batches] == [10] * 10 + [3]
    assert torch.equal(torch.cat(batches).sort().values, train_ids)


def test_drop_last_and_no_shuffle():
    loader = SeedLoader(torch.arange(25), 10, shuffle=False, drop_last=True)
    assert [b.tolist() for b in loader.batches(3)] == [list(range(10)), list(range(10, 20))]
    assert len(loader) == 2
    assert len(SeedLoader(torch.arange(20), 10, drop_last=True)) == 2


def test_batches_fixed_by_seed_and_epoch():
    train_ids = torch.arange(50)
    first, second = SeedLoader(train_ids, 8, seed=5), SeedLoader(train_ids, 8, seed=5)
    for epoch in (0, 1, 7):
        assert all(torch.equal(a, b) for a, b in zip(first.batches(epoch), second.batches(epoch)))
    assert not torch.equal(next(first.batches(0)), next(first.batches(1)))
    assert not torch.equal(next(first.batches(0)), next(SeedLoader(train_ids, 8, seed=6).batches(0)))


def test_seed_none_follows_torch_manual_seed():
    torch.manual_seed(3)
    a = next(SeedLoader(torch.arange(50), 8).batches(0))
    torch.manual_seed(3)
    assert torch.equal(a, next(SeedLoader(torch.arange(50), 8).batches(0)))


def test_bool_mask_gives_the_masked_ids():
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[2, 5, 7]] = True
    assert sorted(torch.cat(list(SeedLoader(mask, 2, seed=0).batches(0))).tolist()) == [2, 5, 7]


@pytest.mark.parametrize("batch_size", [0, -3, 11])
def test_batch_size_out_of_range_names_the_value(batch_size):
    with pytest.raises(ValueError, match=rf"batch_size.*\(got {batch_size}\)"):
        SeedLoader(torch.arange(10), batch_size)


def test_bad_train_ids():
    with pytest.raises(ValueError, match="empty"):
        SeedLoader(torch.tensor([], dtype=torch.long), 1)
    with pytest.raises(TypeError, match="train_ids"):
        SeedLoader(torch.rand(5), 2)
    with pytest.raises(TypeError, match="batch_size"):
        SeedLoader(torch.arange(5), 2.0)
