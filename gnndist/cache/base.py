"""The cache-policy interface: which remote rows a worker's cache holds, and the registry of policies.

A worker numbers the remote nodes it may ever need ``0..count-1`` (its halo within the model's
hops); a :class:`~gnndist.cache.cached.CachedFeatureStore` holds some of their rows in front of the
owners' stores. Policies differ only in which rows it holds: static policies choose once in
:meth:`CachePolicy._choose`; dynamic ones also pick the slots to refill after every batch in
:meth:`CachePolicy._admit`.
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


@dataclass(eq=False)
class RemoteNodes:
    """What policies rank a cache's remote nodes (numbered ``0..count-1``) by.

    Attributes:
        in_degree: ``[count]`` whole-graph in-degree of every remote node (``degree`` policy).
        access_counts: ``access_counts(epochs) -> [count]`` how often (a count or its expectation)
            each remote node appears in the batches of ``epochs`` sampled epochs (``presample``
            policy); None when unavailable.
    """

    in_degree: Tensor
    access_counts: Callable[[int], Tensor] | None = None

    @property
    def count(self) -> int:
        return self.in_degree.numel()


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


class CachePolicy(abc.ABC):
    """Which remote rows a cache holds: a set chosen when the cache is built, and slots refilled after every batch.

    Subclasses implement :meth:`_choose` (the rows to hold from the start) and optionally
    :meth:`_admit` (dynamic policies). A policy instance serves one cache, used by one thread at a time.

    Args:
        capacity: rows held, as a fraction of the remote nodes (``<= 1``) or bytes (``> 1``).
    """

    name: ClassVar[str] = ""

    def __init__(self, capacity: float = 0.2):
        self.capacity = check_capacity(capacity)

    def capacity_rows(self, num_remote: int, row_bytes: int) -> int:
        """Rows a cache of this policy holds for ``num_remote`` rows of ``row_bytes`` each."""
        return capacity_rows(self.capacity, num_remote, row_bytes)

    def choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        """The ``[<= rows]`` distinct remote ids to hold from the start (in slot order)."""
        held = self._choose(remote, rows).to(torch.long)
        if held.numel() > rows:
            raise RuntimeError(f"Cache policy {self.name!r} chose {held.numel()} rows for a capacity of {rows}")
        return held

    def admit(self, hit_slots: Tensor, num_misses: int) -> Tensor:
        """The slots to refill with a batch's first misses (in batch order), after it hit ``hit_slots`` and missed ``num_misses`` rows."""
        slots = self._admit(hit_slots, num_misses)
        if slots.numel() > num_misses:
            raise RuntimeError(f"Cache policy {self.name!r} admitted {slots.numel()} rows of {num_misses} missed")
        return slots

    @abc.abstractmethod
    def _choose(self, remote: RemoteNodes, rows: int) -> Tensor:
        """The ``[<= rows]`` distinct remote ids to hold from the start."""

    def _admit(self, hit_slots: Tensor, num_misses: int) -> Tensor:
        """Slots to refill after a batch (static policies: none)."""
        return hit_slots[:0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity={self.capacity:g})"


register_cache = CACHES.register


def resolve_cache(name_or_instance: str | CachePolicy, **kwargs: Any) -> CachePolicy:
    """The cache policy named ``name_or_instance`` built with ``kwargs`` (``capacity`` and its options)."""
    return CACHES.resolve(name_or_instance, **kwargs)


def available_caches() -> list[str]:
    return CACHES.available()
