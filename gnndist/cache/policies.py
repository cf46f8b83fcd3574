"""The built-in cache policies: none, degree (PaGraph), presample (GNNLab) and lru."""
from __future__ import annotations

import torch
from torch import Tensor

from gnndist.cache.base import CachePolicy, RemoteNodes


def _ranked(primary: Tensor, secondary: Tensor | None = None) -> Tensor:
    """Ids sorted by ``primary`` descending, ties by ``secondary`` descending, then by id (deterministic)."""
    order = torch.arange(primary.numel())
    if secondary is not None:
        order = order[torch.argsort(secondary, descending=True, stable=True)]
    return order[torch.argsort(primary[order], descending=True, stable=True)]


class NoCache(CachePolicy):
    """Holds nothing: every remote row is fetched from its owner. ``capacity`` is ignored."""

    name = "none"

    def capacity_rows(self, num_remote: int, row_bytes: int) -> int:
        return 0

    def _choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        return torch.zeros(0, dtype=torch.long)


class DegreeCache(CachePolicy):
    """Static: the remote nodes of highest whole-graph in-degree (PaGraph), chosen once."""

    name = "degree"

    def _choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        return _ranked(remote.in_degree)[:rows]


class PresampleCache(CachePolicy):
    """Static: the remote nodes sampled most often over ``epochs`` pre-sampled epochs (GNNLab's PreSC).

    Pre-sampling runs the worker's sampler (with a seed of its own, so training batches do not
    change) over its seed batches and counts how often each remote node is an input node
    (``RemoteNodes.access_counts``; the worker's counts are expected counts given the sampled
    frontiers, see ``PartBatches.count_remote_accesses``). Ties, and nodes never reached, are
    ranked by in-degree.

    Args:
        capacity: as for every cache.
        epochs: pre-sampled epochs (>= 1).
    """

    name = "presample"

    def __init__(self, capacity: float = 0.2, epochs: int = 1):
        super().__init__(capacity)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"Expected presample 'epochs' >= 1 (got {epochs!r})")
        self.epochs = epochs

    def _choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        if remote.access_counts is None:
            raise ValueError("The 'presample' cache needs access counts from pre-sampled epochs (RemoteNodes.access_counts is None)")
        counts = remote.access_counts(self.epochs)
        if counts.shape != (remote.count,):
            raise ValueError(f"Expected access counts of shape [{remote.count}] (got {tuple(counts.shape)})")
        return _ranked(counts, remote.in_degree)[:rows]


class LRUCache(CachePolicy):
    """Dynamic: admits every fetched row, evicting the least recently used; starts empty.

    Recency is kept per batch (one clock tick per gather), so the rows of one batch are equally
    recent; eviction picks the slots with the oldest tick (empty slots first), all at once. When a
    batch misses more rows than the slots it did not hit, the first misses (in batch order) are admitted.
    """

    name = "lru"

    def _choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        self._last_used = torch.full((rows,), -1, dtype=torch.long)  # batch tick of each slot's last use
        self._clock = 0
        return torch.zeros(0, dtype=torch.long)

    def _admit(self, hit_slots: Tensor, num_misses: int) -> Tensor:
        if self._last_used.numel() == 0:
            return hit_slots[:0]
        self._clock += 1
        self._last_used.index_fill_(0, hit_slots, self._clock)
        admit = min(num_misses, self._last_used.numel() - hit_slots.numel())
        if admit <= 0:
            return hit_slots[:0]
        victims = torch.topk(self._last_used, admit, largest=False, sorted=False).indices
        self._last_used.index_fill_(0, victims, self._clock)
        return victims
