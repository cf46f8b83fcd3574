"""Negative samplers by name (``task.negative_sampler``): destinations of corrupted edges ``(src, w)``.

A sampler draws ``k`` destinations per positive edge from anywhere in the graph, without checking
them against the edges (as PyG's ``negative_sampling(method="sparse")`` would do only approximately too):
on a sparse graph a uniform draw hits an edge with probability ``|E| / N^2``, which the tests bound.
Every sampler has one signature: ``sampler(count, k, degree, generator) -> [count, k]`` int64.
"""
from __future__ import annotations

import torch
from torch import Tensor


def uniform(count: int, k: int, degree: Tensor, generator: torch.Generator) -> Tensor:
    """``[count, k]`` destinations drawn uniformly from all ``degree.numel()`` nodes."""
    return torch.randint(degree.numel(), (count, k), generator=generator)


def degree(count: int, k: int, degree: Tensor, generator: torch.Generator) -> Tensor:
    """``[count, k]`` destinations drawn with probability proportional to their degree (popular nodes
    make harder negatives, word2vec-style); a graph without edges falls back to uniform."""
    weights = degree.to(torch.float64)
    if float(weights.sum()) == 0:
        return uniform(count, k, degree, generator)
    if count * k == 0:
        return torch.empty(count, k, dtype=torch.long)
    return torch.multinomial(weights, count * k, replacement=True, generator=generator).view(count, k)
