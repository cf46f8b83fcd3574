"""Seed batches for mini-batch training, the same for every process given (seed, epoch)."""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from gnndist.seeding import derive_seed


def random_seed() -> int:
    """A seed drawn from torch's default generator, so ``torch.manual_seed`` fixes it."""
    return int(torch.randint(0, 2**62, (1,)))


class SeedLoader:
    """Splits the training nodes into seed batches, shuffled by a permutation fixed by ``(seed, epoch)``.

    The single-process reference trainer and every worker draw the same batches for the same
    ``(seed, epoch)``, on any device: the permutation is drawn on the CPU and moved.

    Args:
        train_ids: ``[num_train]`` node ids, or a ``[num_nodes]`` bool mask of the training nodes.
        batch_size: seeds per batch, in ``[1, num_train]``.
        shuffle: permute the seeds every epoch (False: the order of ``train_ids``).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        seed: fixes every epoch's permutation; None draws one from torch's default generator.
    """

    def __init__(self, train_ids: Tensor, batch_size: int, *, shuffle: bool = True, drop_last: bool = False, seed: int | None = None):
        train_ids = torch.as_tensor(train_ids)
        if train_ids.dtype == torch.bool:
            train_ids = train_ids.nonzero().flatten()
        if train_ids.is_floating_point() or train_ids.dim() != 1:
            raise TypeError(f"Expected 'train_ids' as a 1-D integer id tensor or bool mask (got dtype {train_ids.dtype}, shape {tuple(train_ids.shape)})")
        if train_ids.numel() == 0:
            raise ValueError("Expected at least one training node (got 'train_ids' empty)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"Expected 'batch_size' to be an int (got {batch_size!r})")
        if not 1 <= batch_size <= train_ids.numel():
            raise ValueError(f"Expected 'batch_size' in [1, {train_ids.numel()}] (the number of training seeds) (got {batch_size})")
        self.train_ids = train_ids.long()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = random_seed() if seed is None else int(seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.train_ids.numel(), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def batches(self, epoch: int = 0) -> Iterator[Tensor]:
        """Yields the ``[<= batch_size]`` seed batches of ``epoch``, on the device of ``train_ids``."""
        ids = self.train_ids
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
            ids = ids[torch.randperm(ids.numel(), generator=generator).to(ids.device)]
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield ids[start : start + self.batch_size]
