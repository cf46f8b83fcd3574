"""Seeds for every random stream of a run, derived one way from ``(seed, keys...)``.

Every random choice gnndist makes (model initialisation, dropout masks, seed batches, neighbour
sampling, pre-sampling, boundary sampling, stochastic rounding) draws from a stream whose seed is
``derive_seed(train.seed, *keys)``: the keys name the stream, the worker and the epoch, so the same
config gives the same numbers in every process and on every device, and nearby keys give unrelated
streams (splitmix64 mixing, not arithmetic on the seed).
"""
from __future__ import annotations

from enum import IntEnum

_MASK64 = (1 << 64) - 1


class Stream(IntEnum):
    """The random streams of a run (a key of :func:`derive_seed`)."""

    SAMPLER = 1
    LOADER = 2
    PRESAMPLE = 3
    DROPOUT = 4
    BOUNDARY_SAMPLE = 5
    QUANTIZE = 6
    NEGATIVE = 7
    LINK_SPLIT = 8


def mix_seed(seed: int, key: int) -> int:
    """A 63-bit seed derived from ``(seed, key)`` (splitmix64), so nearby pairs give unrelated streams."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(key) + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def derive_seed(seed: int, *keys: int) -> int:
    """``mix_seed`` folded over ``keys``: the seed of the stream ``(seed, keys[0], keys[1], ...)``."""
    for key in keys:
        seed = mix_seed(seed, key)
    return seed


def stream_seed(seed: int, rank: int, stream: Stream) -> int:
    """The seed of one stream of worker ``rank`` (the single-process reference is rank 0)."""
    return derive_seed(seed, rank, stream)


def dropout_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The torch seed set at the start of every epoch: dropout masks depend on (seed, epoch, rank) only."""
    return derive_seed(seed, rank, Stream.DROPOUT, epoch)


def generator(seed: int, *keys: int, device=None):
    """A ``torch.Generator`` (on ``device``, default the CPU) seeded with ``derive_seed(seed, *keys)``."""
    import torch

    return torch.Generator(device=device or "cpu").manual_seed(derive_seed(seed, *keys))
