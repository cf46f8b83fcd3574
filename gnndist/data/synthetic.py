"""Seeded graph generators: a learnable degree-corrected SBM, power-law RMAT and uniform random graphs, in memory,
and SBM and RMAT streamed block by block (gnndist convert)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from gnndist.data.chunked import EdgeBlock, FieldSpec
from gnndist.data.registry import random_split_masks
from gnndist.graph import Graph
from gnndist.seeding import generator as seeded_generator

PAIR_BLOCK = 1 << 16  # edges a streamed generator draws per seeded block (fixed: the graph never depends on chunk sizes)
ROW_BLOCK = 1 << 14  # feature rows a streamed generator draws per seeded block


def _centroids(num_classes: int, feature_dim: int, generator: torch.Generator) -> Tensor:
    """One random direction of norm sqrt(feature_dim) per class: ``[num_classes, feature_dim]``."""
    if feature_dim < 1:
        raise ValueError(f"Expected feature_dim >= 1 (got {feature_dim})")
    centroids = torch.randn(num_classes, feature_dim, generator=generator)
    return centroids / centroids.norm(dim=1, keepdim=True) * math.sqrt(feature_dim)


def _class_features(labels: Tensor, num_classes: int, feature_dim: int, signal: float, generator: torch.Generator) -> Tensor:
    """Features = class centroid * signal + unit Gaussian noise, so labels are learnable but not trivial."""
    centroids = _centroids(num_classes, feature_dim, generator)
    noise = torch.randn(labels.numel(), feature_dim, generator=generator)
    return centroids[labels] * signal + noise


def _sample_weighted(cumulative: Tensor, low: Tensor, high: Tensor, generator: torch.Generator) -> Tensor:
    """Index i with probability proportional to its weight, restricted per draw to the range [low, high) of the cumulative sum."""
    u = low + torch.rand(low.numel(), generator=generator, dtype=torch.float64) * (high - low)
    return torch.searchsorted(cumulative, u, right=True).clamp_(max=cumulative.numel() - 1)


@dataclass(frozen=True)
class _SbmModel:
    """The node-sized state of a degree-corrected SBM: labels, power-law weights, nodes grouped by class."""

    labels: Tensor
    order: Tensor
    cumulative: Tensor
    class_start: Tensor
    class_end: Tensor
    homophily: float

    @classmethod
    def draw(cls, num_nodes: int, num_classes: int, homophily: float, degree_exponent: float, avg_degree: float, generator: torch.Generator) -> "_SbmModel":
        """Checks the options and draws labels and degree weights (see :func:`sbm`)."""
        if num_nodes < max(num_classes, 1) or num_classes < 1:
            raise ValueError(f"Expected num_nodes >= num_classes >= 1 (got num_nodes={num_nodes}, num_classes={num_classes})")
        if not 0.0 <= homophily <= 1.0:
            raise ValueError(f"Expected homophily in [0, 1] (got {homophily})")
        if avg_degree <= 0:
            raise ValueError(f"Expected avg_degree > 0 (got {avg_degree})")
        if degree_exponent <= 1:
            raise ValueError(f"Expected degree_exponent > 1 (got {degree_exponent})")
        labels = torch.randint(num_classes, (num_nodes,), generator=generator)
        weight = (1.0 - torch.rand(num_nodes, generator=generator, dtype=torch.float64)).pow(-1.0 / (degree_exponent - 1.0))
        weight = weight.clamp(max=weight.median() * math.sqrt(num_nodes))  # cap hubs like real graphs do
        order = torch.argsort(labels, stable=True)  # nodes grouped by class
        cumulative = torch.cumsum(weight[order], 0)
        class_sizes = torch.bincount(labels, minlength=num_classes)
        class_end = cumulative[torch.cumsum(class_sizes, 0) - 1]
        class_start = torch.cat([torch.zeros(1, dtype=torch.float64), class_end[:-1]])
        return cls(labels, order, cumulative, class_start, class_end, homophily)

    def pairs(self, num_pairs: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``num_pairs`` (src, dst) draws: src by weight, dst by weight in src's class with probability ``homophily``."""
        num_classes = self.class_end.numel()
        total = self.cumulative[-1].expand(num_pairs)
        src = self.order[_sample_weighted(self.cumulative, torch.zeros(num_pairs, dtype=torch.float64), total, generator)]
        same = torch.rand(num_pairs, generator=generator) < self.homophily
        dst_class = torch.where(same, self.labels[src], torch.randint(num_classes, (num_pairs,), generator=generator))
        dst = self.order[_sample_weighted(self.cumulative, self.class_start[dst_class], self.class_end[dst_class], generator)]
        return src, dst


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
    generator = torch.Generator().manual_seed(seed)
    model = _SbmModel.draw(num_nodes, num_classes, homophily, degree_exponent, avg_degree, generator)
    num_pairs = int(num_nodes * avg_degree / 2 * 1.02)  # a little extra for self loops and duplicates
    src, dst = model.pairs(num_pairs, generator)
    keep = src != dst
    labels = model.labels
    node_data = dict(
        x=_class_features(labels, num_classes, feature_dim, feature_signal, generator),
        y=labels,
        **random_split_masks(num_nodes, train_fraction, val_fraction, None, generator),
    )
    return Graph.from_edge_index(torch.stack([src[keep], dst[keep]]), num_nodes, num_classes=num_classes, **node_data).to_undirected()


def _check_rmat(scale: int, a: float, b: float, c: float, num_classes: int) -> int:
    """Checks the RMAT options; returns the node count ``2**scale``."""
    d = 1.0 - a - b - c
    if min(a, b, c, d) < 0:
        raise ValueError(f"Expected RMAT probabilities a, b, c >= 0 with a + b + c <= 1 (got a={a}, b={b}, c={c})")
    if not 1 <= scale <= 31:
        raise ValueError(f"Expected scale in [1, 31] (got {scale})")
    num_nodes = 1 << scale
    if num_classes < 1 or num_classes & (num_classes - 1) or num_classes > num_nodes:
        raise ValueError(f"Expected num_classes a power of two in [1, {num_nodes}] (got {num_classes})")
    return num_nodes


def _rmat_edges(scale: int, num_edges: int, a: float, b: float, c: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``num_edges`` (src, dst) ids, unpermuted, each drawn down ``scale`` levels of quadrants."""
    src = torch.zeros(num_edges, dtype=torch.long)
    dst = torch.zeros(num_edges, dtype=torch.long)
    for _ in range(scale):
        r = torch.rand(num_edges, generator=generator)
        src = (src << 1) | (r >= a + b).long()
        dst = (dst << 1) | (((r >= a) & (r < a + b)) | (r >= a + b + c)).long()
    return src, dst


def _rmat_labels(scale: int, num_classes: int) -> Tensor:
    """The label of each unpermuted id: its top ``log2(num_classes)`` bits."""
    return torch.arange(1 << scale) >> (scale - int(math.log2(num_classes)))


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
    num_nodes = _check_rmat(scale, a, b, c, num_classes)
    generator = torch.Generator().manual_seed(seed)
    src, dst = _rmat_edges(scale, int(edge_factor * num_nodes), a, b, c, generator)
    labels = _rmat_labels(scale, num_classes)
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


# ---------------------------------------------------------------------- streamed variants (gnndist convert)
class _Key(IntEnum):
    """The random streams of a streamed generator: ``seeding.generator(seed, key, block)``."""

    NODES = 1
    EDGES = 2
    CENTROIDS = 3
    FEATURES = 4
    SPLITS = 5


class StreamedGraph:
    """A generated graph as a ``GraphSource`` (``gnndist.data.chunked``): node-sized arrays held, edges and feature rows made block by block.

    Edge block ``k`` draws from ``seeding.generator(seed, EDGES, k)`` and feature rows ``[b * ROW_BLOCK, (b + 1) * ROW_BLOCK)``
    from ``seeding.generator(seed, FEATURES, b)``, with fixed block sizes, so the graph depends on the seed and the
    options only, never on how a writer cuts it into chunks, and memory stays ~ one block plus O(num_nodes).

    Attributes:
        num_nodes, num_classes: sizes.
        node_fields: x (float32 [F]), y (int64), train/val/test masks (bool).
        labels: ``[num_nodes]`` int64; masks: the three split masks.
        num_edge_blocks: how many blocks :meth:`edge_blocks` yields.
    """

    has_edge_weight = False
    types = None  # homogeneous: no typed variant

    def __init__(
        self,
        *,
        labels: Tensor,
        num_classes: int,
        feature_dim: int,
        feature_signal: float,
        train_fraction: float,
        val_fraction: float,
        seed: int,
        num_edge_blocks: int,
        draw_edges: Callable[[int, torch.Generator], tuple[Tensor, Tensor]],
        undirected: bool,
    ) -> None:
        self.num_nodes = labels.numel()
        self.num_classes = num_classes
        self.labels = labels
        self.centroids = _centroids(num_classes, feature_dim, seeded_generator(seed, _Key.CENTROIDS)) * feature_signal
        self.masks = random_split_masks(self.num_nodes, train_fraction, val_fraction, None, seeded_generator(seed, _Key.SPLITS))
        self.node_fields = {"x": FieldSpec(np.dtype(np.float32), (feature_dim,)), "y": FieldSpec(np.dtype(np.int64), ()), **{name: FieldSpec(np.dtype(np.bool_), ()) for name in self.masks}}
        self.seed = seed
        self.num_edge_blocks = num_edge_blocks
        self.draw_edges = draw_edges
        self.undirected = undirected
        self.description: dict[str, Any] = {}

    def edge_blocks(self) -> Iterator[EdgeBlock]:
        """Block ``k``: ``draw_edges(k, generator)`` without self loops, each edge also reversed when undirected (duplicates kept)."""
        for index in range(self.num_edge_blocks):
            src, dst = self.draw_edges(index, seeded_generator(self.seed, _Key.EDGES, index))
            keep = src != dst
            src, dst = src[keep], dst[keep]
            if self.undirected:
                src, dst = torch.cat([src, dst]), torch.cat([dst, src])
            yield EdgeBlock(src.numpy(), dst.numpy())

    def node_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        if name == "y":
            return self.labels[start:stop].numpy()
        if name != "x":
            return self.masks[name][start:stop].numpy()
        rows = []
        for block in range(start // ROW_BLOCK, -(-stop // ROW_BLOCK)):
            lo, hi = block * ROW_BLOCK, min((block + 1) * ROW_BLOCK, self.num_nodes)
            noise = torch.randn(hi - lo, self.centroids.size(1), generator=seeded_generator(self.seed, _Key.FEATURES, block))
            rows.append((self.centroids[self.labels[lo:hi]] + noise)[max(start, lo) - lo:min(stop, hi) - lo])
        return torch.cat(rows).numpy() if rows else np.empty((0, self.centroids.size(1)), np.float32)


def sbm_stream(
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
) -> StreamedGraph:
    """The :func:`sbm` model streamed for ``gnndist convert``: same options and distribution, not the same edges.

    Draws ``num_nodes * avg_degree / 2`` pairs in seeded blocks of ``PAIR_BLOCK`` (see :class:`StreamedGraph`),
    drops self loops and emits both directions; duplicate pairs are kept (a multigraph: removing them would need
    every edge at once). Labels and degree weights are node-sized and held.
    """
    model = _SbmModel.draw(num_nodes, num_classes, homophily, degree_exponent, avg_degree, seeded_generator(seed, _Key.NODES))
    num_pairs = int(num_nodes * avg_degree / 2)

    def draw_edges(index: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return model.pairs(min(PAIR_BLOCK, num_pairs - index * PAIR_BLOCK), generator)

    return StreamedGraph(
        labels=model.labels, num_classes=num_classes, feature_dim=feature_dim, feature_signal=feature_signal, train_fraction=train_fraction,
        val_fraction=val_fraction, seed=seed, num_edge_blocks=-(-num_pairs // PAIR_BLOCK), draw_edges=draw_edges, undirected=True,
    )


def rmat_stream(
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
) -> StreamedGraph:
    """The :func:`rmat` model streamed for ``gnndist convert``: same options and distribution, not the same edges.

    Draws ``edge_factor * 2**scale`` edges in seeded blocks of ``PAIR_BLOCK`` (see :class:`StreamedGraph`) through
    the same random node permutation; self loops are dropped, duplicates kept (a multigraph).
    """
    num_nodes = _check_rmat(scale, a, b, c, num_classes)
    perm = torch.randperm(num_nodes, generator=seeded_generator(seed, _Key.NODES))
    labels = torch.empty(num_nodes, dtype=torch.long)
    labels[perm] = _rmat_labels(scale, num_classes)
    num_edges = int(edge_factor * num_nodes)

    def draw_edges(index: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        src, dst = _rmat_edges(scale, min(PAIR_BLOCK, num_edges - index * PAIR_BLOCK), a, b, c, generator)
        return perm[src], perm[dst]

    return StreamedGraph(
        labels=labels, num_classes=num_classes, feature_dim=feature_dim, feature_signal=feature_signal, train_fraction=train_fraction,
        val_fraction=val_fraction, seed=seed, num_edge_blocks=-(-num_edges // PAIR_BLOCK), draw_edges=draw_edges, undirected=undirected,
    )
