"""Seeded graph generators: a learnable degree-corrected SBM, power-law RMAT and uniform random graphs."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gnndist.data.registry import random_split_masks
from gnndist.graph import Graph


def _class_features(labels: Tensor, num_classes: int, feature_dim: int, signal: float, generator: torch.Generator) -> Tensor:
    """Features = class centroid * signal + unit Gaussian noise, so labels are learnable but not trivial."""
    if feature_dim < 1:
        raise ValueError(f"Expected feature_dim >= 1 (got {feature_dim})")
    centroids = torch.randn(num_classes, feature_dim, generator=generator)
    centroids = centroids / centroids.norm(dim=1, keepdim=True) * math.sqrt(feature_dim)
    noise = torch.randn(labels.numel(), feature_dim, generator=generator)
    return centroids[labels] * signal + noise


def _sample_weighted(cumulative: Tensor, low: Tensor, high: Tensor, generator: torch.Generator) -> Tensor:
    """Index i with probability proportional to its weight, restricted per draw to the range [low, high) of the cumulative sum."""
    u = low + torch.rand(low.numel(), generator=generator, dtype=torch.float64) * (high - low)
    return torch.searchsorted(cumulative, u, right=True).clamp_(max=cumulative.numel() - 1)


def sbm(
    *,
    num_nodes: int = 20_000,
    num_classes: int = 8,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    degree_exponent: float = 2.5,
    feature_dim: int = 64,
    feature_signal: float = 0.15,
    train_fraction: float = 0.25,
    val_fraction: float = 0.25,
    seed: int = 0,
) -> Graph:
    """Degree-corrected stochastic block model with class-correlated features, undirected.

    Each undirected edge picks its first end with probability proportional to a power-law weight
    (exponent ``degree_exponent``); with probability ``homophily`` its other end is in the same class,
    else in a uniformly chosen class, again by weight. About ``num_nodes * avg_degree`` directed edges.

    Args:
        num_nodes: nodes (>= num_classes).
        num_classes: blocks = label classes.
        avg_degree: mean in-degree after symmetrisation.
        homophily: fraction of intra-class edges in [0, 1].
        degree_exponent: power-law exponent of the degree weights (> 1; larger = more uniform).
        feature_dim: feature width.
        feature_signal: centroid scale relative to unit noise (larger = easier from features alone).
        train_fraction, val_fraction: split sizes; the rest is test.
        seed: everything is a function of it.
    """
    if num_nodes < max(num_classes, 1) or num_classes < 1:
        raise ValueError(f"Expected num_nodes >= num_classes >= 1 (got num_nodes={num_nodes}, num_classes={num_classes})")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"Expected homophily in [0, 1] (got {homophily})")
    if avg_degree <= 0:
        raise ValueError(f"Expected avg_degree > 0 (got {avg_degree})")
    if degree_exponent <= 1:
        raise ValueError(f"Expected degree_exponent > 1 (got {degree_exponent})")
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (num_nodes,), generator=generator)
    weight = (1.0 - torch.rand(num_nodes, generator=generator, dtype=torch.float64)).pow(-1.0 / (degree_exponent - 1.0))
    weight = weight.clamp(max=weight.median() * math.sqrt(num_nodes))  # cap hubs like real graphs do

    order = torch.argsort(labels, stable=True)  # nodes grouped by class
    cumulative = torch.cumsum(weight[order], 0)
    class_sizes = torch.bincount(labels, minlength=num_classes)
    class_end = cumulative[torch.cumsum(class_sizes, 0) - 1]
    class_start = torch.cat([torch.zeros(1, dtype=torch.float64), class_end[:-1]])

    num_pairs = int(num_nodes * avg_degree / 2 * 1.02)  # a little extra for self loops and duplicates
    total = cumulative[-1].expand(num_pairs)
    src = order[_sample_weighted(cumulative, torch.zeros(num_pairs, dtype=torch.float64), total, generator)]
    same = torch.rand(num_pairs, generator=generator) < homophily
    dst_class = torch.where(same, labels[src], torch.randint(num_classes, (num_pairs,), generator=generator))
    dst = order[_sample_weighted(cumulative, class_start[dst_class], class_end[dst_class], generator)]
    keep = src != dst
    node_data = dict(
        x=_class_features(labels, num_classes, feature_dim, feature_signal, generator),
        y=labels,
        **random_split_masks(num_nodes, train_fraction, val_fraction, None, generator),
    )
    return Graph.from_edge_index(torch.stack([src[keep], dst[keep]]), num_nodes, num_classes=num_classes, **node_data).to_undirected()


def rmat(
    *,
    scale: int = 14,
    edge_factor: float = 16.0,
    a: float = 0.57,
    b: float = 0.19,
    c: float = 0.19,
    undirected: bool = True,
    num_classes: int = 8,
    feature_dim: int = 64,
    feature_signal: float = 0.15,
    train_fraction: float = 0.25,
    val_fraction: float = 0.25,
    seed: int = 0,
) -> Graph:
    """Recursive-matrix (RMAT, Graph500-style) power-law graph on ``2**scale`` nodes.

    ``edge_factor * 2**scale`` edges are drawn by descending ``scale`` levels of the adjacency
    quadrants with probabilities a, b, c, d = 1 - a - b - c; self loops and duplicates are dropped,
    node ids are permuted (so ids carry no locality). Labels are the top bits of the unpermuted id
    (the recursive block a node falls in) and features are class centroids plus noise.

    Args:
        scale: log2 of the node count.
        edge_factor: edges drawn per node (before symmetrisation and de-duplication).
        a, b, c: quadrant probabilities (the skew; a = b = c = 0.25 is uniform).
        undirected: add reverse edges.
        num_classes: a power of two <= 2**scale.
    """
    d = 1.0 - a - b - c
    if min(a, b, c, d) < 0:
        raise ValueError(f"Expected RMAT probabilities a, b, c >= 0 with a + b + c <= 1 (got a={a}, b={b}, c={c})")
    if not 1 <= scale <= 31:
        raise ValueError(f"Expected scale in [1, 31] (got {scale})")
    num_nodes = 1 << scale
    if num_classes < 1 or num_classes & (num_classes - 1) or num_classes > num_nodes:
        raise ValueError(f"Expected num_classes a power of two in [1, {num_nodes}] (got {num_classes})")
    generator = torch.Generator().manual_seed(seed)
    num_edges = int(edge_factor * num_nodes)
    src = torch.zeros(num_edges, dtype=torch.long)
    dst = torch.zeros(num_edges, dtype=torch.long)
    for _ in range(scale):
        r = torch.rand(num_edges, generator=generator)
        src = (src << 1) | (r >= a + b).long()
        dst = (dst << 1) | (((r >= a) & (r < a + b)) | (r >= a + b + c)).long()
    labels = torch.arange(num_nodes) >> (scale - int(math.log2(num_classes)))
    perm = torch.randperm(num_nodes, generator=generator)
    src, dst = perm[src], perm[dst]
    keep = src != dst
    y = torch.empty(num_nodes, dtype=torch.long)
    y[perm] = labels
    node_data = dict(
        x=_class_features(y, num_classes, feature_dim, feature_signal, generator),
        y=y,
        **random_split_masks(num_nodes, train_fraction, val_fraction, None, generator),
    )
    graph = Graph.from_edge_index(torch.stack([src[keep], dst[keep]]), num_nodes, num_classes=num_classes, **node_data)
    return graph.to_undirected() if undirected else graph


def uniform(
    *,
    num_nodes: int = 10_000,
    avg_degree: float = 10.0,
    num_classes: int = 8,
    feature_dim: int = 64,
    feature_signal: float = 0.15,
    train_fraction: float = 0.25,
    val_fraction: float = 0.25,
    seed: int = 0,
) -> Graph:
    """Uniform random directed graph (Erdos-Renyi-like): no degree skew, no community structure.

    ``num_nodes * avg_degree`` edges with independent uniform ends are drawn and de-duplicated
    (self loops kept), so the in-degrees are close to Poisson(avg_degree). Labels are uniform and
    features are class centroids plus noise, so the graph carries no signal beyond the features: the
    baseline of the aggregation benchmark's degree and size sweeps.

    Args:
        num_nodes: nodes (>= 1).
        avg_degree: edges drawn per node (> 0; slightly fewer remain after de-duplication).
        num_classes: label classes.
        feature_dim, feature_signal, train_fraction, val_fraction, seed: as for :func:`sbm`.
    """
    if num_nodes < 1 or num_classes < 1:
        raise ValueError(f"Expected num_nodes >= 1 and num_classes >= 1 (got num_nodes={num_nodes}, num_classes={num_classes})")
    if avg_degree <= 0:
        raise ValueError(f"Expected avg_degree > 0 (got {avg_degree})")
    generator = torch.Generator().manual_seed(seed)
    num_edges = int(num_nodes * avg_degree)
    src = torch.randint(num_nodes, (num_edges,), generator=generator)
    dst = torch.randint(num_nodes, (num_edges,), generator=generator)
    key = torch.unique(dst * num_nodes + src)
    labels = torch.randint(num_classes, (num_nodes,), generator=generator)
    node_data = dict(
        x=_class_features(labels, num_classes, feature_dim, feature_signal, generator),
        y=labels,
        **random_split_masks(num_nodes, train_fraction, val_fraction, None, generator),
    )
    return Graph.from_edge_index(torch.stack([key % num_nodes, key // num_nodes]), num_nodes, num_classes=num_classes, **node_data)
