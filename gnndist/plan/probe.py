"""Mini-batch shapes, measured: a few real sampled batches per part, for the cost model's layer sizes and remote rows.

The analytic frontier model (:func:`gnndist.plan.model.minibatch_layers`: ``min(fanout, mean degree)`` draws
per node, repeats as among uniform draws) cannot see what a graph's degree spread and communities do to a
batch: on a 100k-node ``sbm`` (average degree 10, fanouts [10, 5], 2048 seeds) it predicts 84.5k input nodes
where the sampler draws 34.9k, and the epoch time 55 % high. When the graph is in memory (``gnndist plan`` on a
dataset, a run on a dataset that is not chunked), the planner instead samples a few batches of every part's
training seeds with gnndist's own sampler on the whole graph (a worker's local graph holds the same
neighbourhoods: its part and the rings around it) and counts each layer's sizes and the input nodes owned by
other parts, which a worker fetches from their stores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from gnndist.graph import Graph

PROBE_BATCHES = 4


@dataclass(frozen=True)
class BatchShape:
    """The mean shape of one part's sampled batch of ``seeds`` seeds: per layer in forward order, destinations,
    sources and edges, and the input nodes another part owns."""

    seeds: int
    dst: tuple[float, ...]
    src: tuple[float, ...]
    edges: tuple[float, ...]
    remote_inputs: float

    def layers(self, seeds: int) -> tuple[list[int], list[int], list[int]]:
        """Destinations, sources and edges per layer at ``seeds`` seeds per batch, scaled linearly (the probe
        samples the run's own batch size)."""
        factor = seeds / max(self.seeds, 1)
        scale = lambda values: [int(v * factor) for v in values]  # noqa: E731
        return scale(self.dst), scale(self.src), scale(self.edges)

    def remote_rows(self, seeds: int) -> float:
        """Input rows another part owns, at ``seeds`` seeds per batch."""
        return self.remote_inputs * seeds / max(self.seeds, 1)


def probe_batches(graph: "Graph", node_part: "Tensor", num_parts: int, fanouts: list[int], batch_size: int, *, replace: bool = False, seed: int = 0) -> list[BatchShape]:
    """One :class:`BatchShape` per part, averaged over :data:`PROBE_BATCHES` batches of its training nodes (all its
    nodes without a train mask), each of as many seeds as a step of the run gives that part: the training nodes of
    all parts are split into ``ceil(total / batch_size)`` steps, and a part contributes its share to each."""
    import torch

    from gnndist.sampling import NeighborSampler

    train = graph.train_mask if graph.train_mask is not None else torch.ones(graph.num_nodes, dtype=torch.bool)
    steps = max(1, math.ceil(int(train.sum()) / batch_size))
    sampler = NeighborSampler(graph.indptr, graph.indices, fanouts, replace=replace, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    shapes = []
    for part in range(num_parts):
        items = ((node_part == part) & train).nonzero().squeeze(1)
        seeds = max(1, math.ceil(items.numel() / steps))
        totals = torch.zeros(3 * len(fanouts) + 1, dtype=torch.float64)
        if items.numel():
            for _ in range(PROBE_BATCHES):
                batch = sampler.sample(items[torch.randperm(items.numel(), generator=generator)[:seeds]])
                remote = int((node_part.index_select(0, batch.input_nodes) != part).sum())
                totals += torch.tensor([b.num_dst for b in batch.blocks] + [b.num_src for b in batch.blocks] + [b.num_edges for b in batch.blocks] + [remote], dtype=torch.float64)
            totals /= PROBE_BATCHES
        L = len(fanouts)
        values = totals.tolist()
        shapes.append(BatchShape(seeds, tuple(values[:L]), tuple(values[L : 2 * L]), tuple(values[2 * L : 3 * L]), values[-1]))
    return shapes
