"""The feature-cache interface: which remote rows a worker keeps, served by one public method with counters.

A worker numbers the remote nodes it may ever need ``0..count-1`` (its halo within the model's
hops). Per batch it calls :meth:`FeatureCache.gather` with the remote ids the batch touches: hits
come from the cache's rows, misses from ``fetch`` (the owners' stores), and the counters record
hits, misses and the bytes fetched. Policies differ only in which rows they hold: static policies
choose once in :meth:`FeatureCache._choose`; dynamic ones also update in :meth:`FeatureCache._on_access`.
"""
from __future__ import annotations

import abc
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from gnndist.registry import CACHES

Fetch = Callable[[Tensor], Tensor]
"""``fetch(remote_ids [n]) -> [n, F]`` feature rows from the owners (the stores)."""


@dataclass
class CacheStats:
    """Counters since the last :meth:`reset`: rows served from the cache, rows fetched, bytes fetched."""

    hits: int = 0
    misses: int = 0
    bytes_fetched: int = 0

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        """Fraction of requested remote rows served from the cache (None before any request)."""
        return self.hits / self.requests if self.requests else None

    def reset(self) -> None:
        self.hits, self.misses, self.bytes_fetched = 0, 0, 0


@dataclass(eq=False)
class RemoteNodes:
    """The remote nodes a cache is built for, numbered ``0..count-1``, and what policies rank them by.

    Attributes:
        count: number of remote nodes (the remote set).
        feature_width: feature columns per row.
        dtype: feature dtype.
        in_degree: ``[count]`` whole-graph in-degree of every remote node (``degree`` policy).
        access_counts: ``access_counts(epochs) -> [count]`` how often (a count or its expectation)
            each remote node appears in the batches of ``epochs`` sampled epochs (``presample``
            policy); None when unavailable.
    """

    count: int
    feature_width: int
    dtype: torch.dtype
    in_degree: Tensor
    access_counts: Callable[[int], Tensor] | None = None

    @property
    def row_bytes(self) -> int:
        return self.feature_width * torch.empty((), dtype=self.dtype).element_size()


def check_capacity(capacity: Any) -> float:
    """``capacity`` as a float, refusing negative, non-finite and non-numeric values."""
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)) or not math.isfinite(capacity) or capacity < 0:
        raise ValueError(f"Expected cache capacity >= 0: a fraction of the remote nodes (<= 1) or a number of bytes (> 1) (got {capacity!r})")
    return float(capacity)


def capacity_rows(capacity: float, num_remote: int, row_bytes: int) -> int:
    """Rows a cache of ``capacity`` holds: a fraction of ``num_remote`` when ``<= 1``, else a byte budget.

    A byte budget larger than the whole remote set is clamped to it with a ``UserWarning`` (a
    fraction cannot exceed it).
    """
    capacity = check_capacity(capacity)
    if capacity <= 1.0:
        return int(capacity * num_remote)
    rows = int(capacity // row_bytes)
    if rows > num_remote:
        warnings.warn(
            f"Cache capacity of {capacity:.0f} bytes ({rows} rows of {row_bytes} bytes) exceeds the {num_remote} remote nodes "
            f"({num_remote * row_bytes} bytes); clamped to the whole remote set",
            UserWarning,
            stacklevel=3,
        )
        rows = num_remote
    return rows


class FeatureCache(abc.ABC):
    """Keeps feature rows of some remote nodes; :meth:`gather` serves a batch's remote rows, counting hits.

    Subclasses implement :meth:`_choose` (the rows to hold from the start) and optionally
    :meth:`_on_access` (update after every batch, for dynamic policies). A cache is used by one
    thread at a time.

    Args:
        capacity: rows held, as a fraction of the remote nodes (``<= 1``) or bytes (``> 1``).
    """

    name: ClassVar[str] = ""

    def __init__(self, capacity: float = 0.2):
        self.capacity = check_capacity(capacity)
        self.stats = CacheStats()
        self.capacity_rows = 0
        self.fill_bytes = 0
        self.row_bytes = 0
        self._slot: Tensor | None = None  # [count] slot of each remote node in _rows, -1 when absent
        self._rows: Tensor | None = None  # [capacity_rows, F]

    def build(self, remote: RemoteNodes, fetch: Fetch) -> None:
        """Sizes the cache for ``remote`` and loads the rows the policy holds from the start (through ``fetch``)."""
        if remote.in_degree.shape != (remote.count,):
            raise ValueError(f"Expected 'in_degree' of shape [{remote.count}] (got {tuple(remote.in_degree.shape)})")
        self.row_bytes = remote.row_bytes
        self.capacity_rows = self._capacity_rows(remote)
        self._slot = torch.full((remote.count,), -1, dtype=torch.long)
        self._rows = torch.empty(self.capacity_rows, remote.feature_width, dtype=remote.dtype)
        held = self._choose(remote, self.capacity_rows).to(torch.long)
        if held.numel() > self.capacity_rows:
            raise RuntimeError(f"Cache policy {self.name!r} chose {held.numel()} rows for a capacity of {self.capacity_rows}")
        if held.numel():
            self._rows[: held.numel()] = fetch(held)
            self._slot[held] = torch.arange(held.numel())
        self.fill_bytes = held.numel() * self.row_bytes

    def gather(self, remote_ids: Tensor, fetch: Fetch) -> Tensor:
        """``[n, F]`` rows of the distinct remote nodes ``remote_ids`` (``[n]``): hits from the cache, misses fetched."""
        if self._slot is None:
            raise RuntimeError(f"Call build() before gather() on the {self.name!r} cache")
        slots = self._slot.index_select(0, remote_ids)
        hit = slots >= 0
        num_hits = int(hit.sum()) if self.capacity_rows else 0
        if num_hits == 0:
            miss_ids, out = remote_ids, fetch(remote_ids)
            miss_rows, hit_slots = out, slots[:0]
        elif num_hits == remote_ids.numel():
            out, hit_slots = self._rows.index_select(0, slots), slots
            miss_ids = miss_rows = remote_ids[:0]
        else:
            hit_positions = hit.nonzero().squeeze(1)
            miss_positions = (~hit).nonzero().squeeze(1)
            hit_slots = slots.index_select(0, hit_positions)
            miss_ids = remote_ids.index_select(0, miss_positions)
            miss_rows = fetch(miss_ids)
            out = torch.empty(remote_ids.numel(), self._rows.size(1), dtype=self._rows.dtype)
            out.index_copy_(0, hit_positions, self._rows.index_select(0, hit_slots))
            out.index_copy_(0, miss_positions, miss_rows)
        self.stats.hits += num_hits
        self.stats.misses += miss_ids.numel()
        self.stats.bytes_fetched += miss_ids.numel() * self.row_bytes
        self._on_access(hit_slots, miss_ids, miss_rows)
        return out

    def held_nodes(self) -> Tensor:
        """Remote ids currently held, in slot order."""
        if self._slot is None:
            return torch.zeros(0, dtype=torch.long)
        held = (self._slot >= 0).nonzero().squeeze(1)
        return held[torch.argsort(self._slot[held])]

    def _capacity_rows(self, remote: RemoteNodes) -> int:
        return capacity_rows(self.capacity, remote.count, remote.row_bytes)

    @abc.abstractmethod
    def _choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        """The ``[<= rows]`` distinct remote ids to hold from the start."""

    def _on_access(self, hit_slots: Tensor, miss_ids: Tensor, miss_rows: Tensor) -> None:
        """Called after every gather with the slots hit and the rows fetched (static policies: nothing)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity={self.capacity:g}, rows={self.capacity_rows})"


register_cache = CACHES.register


def resolve_cache(name_or_instance: str | FeatureCache, **kwargs: Any) -> FeatureCache:
    """The cache policy named ``name_or_instance`` built with ``kwargs`` (``capacity`` and its options)."""
    return CACHES.resolve(name_or_instance, **kwargs)


def available_caches() -> list[str]:
    return CACHES.available()
