"""``task.name=node``: node classification on the graph's labels and train/val/test masks (the default)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from gnndist.comm import Communicator
from gnndist.device import to_device
from gnndist.graph import Graph
from gnndist.partition import Part, PartitionBook
from gnndist.tasks.base import BatchObjective, Evaluation, Objective, Task
from gnndist.train.metrics import Masks, SplitCounts, node_loss


def accuracy_evaluation(accuracies: tuple[float | None, float | None, float | None]) -> Evaluation:
    """The evaluation of train/val/test accuracies (the ``EpochMetrics`` fields of node runs)."""
    return Evaluation(dict(zip(("train_acc", "val_acc", "test_acc"), accuracies)))


class NodeTask(Task):
    """Cross-entropy (binary cross-entropy for multi-label ``y``) on the training nodes; accuracy per split."""

    name: ClassVar[str] = "node"
    headline: ClassVar[str] = "acc"
    needs_labels: ClassVar[bool] = True

    def output_width(self, num_classes: int, hidden: int) -> int:
        return num_classes

    def whole_graph(self, graph: Graph, targets: Any, device: torch.device, seed: int) -> "WholeGraphNodes":
        return WholeGraphNodes(graph, device)

    def part(self, part: Part, source: Any, targets: Any, comm: Communicator, device: torch.device, seed: int) -> "PartNodes":
        return PartNodes(part, comm, device)

    def minibatch(self, part: Part, book: PartitionBook | None, targets: Any, device: torch.device, seed: int, rank: int) -> "NodeBatches":
        if part.y is None:
            raise ValueError(f"Part {part.part_id} has no node features 'x' or labels 'y'")
        train_mask = part.train_mask[: part.num_owned] if part.train_mask is not None else torch.zeros(part.num_owned, dtype=torch.bool)
        return NodeBatches(train_mask.nonzero().flatten(), to_device(part.y[: part.num_owned], device))


class WholeGraphNodes(Objective):
    """Every node's rows in one process: the mean loss over the training nodes."""

    def __init__(self, graph: Graph, device: torch.device):
        if graph.y is None:
            raise ValueError("Training needs labels 'y'")
        if graph.train_mask is None or not bool(graph.train_mask.any()):
            raise ValueError("The graph has no training nodes ('train_mask' is missing or all False)")
        self.y = to_device(graph.y, device)
        self.masks: Masks = tuple(None if mask is None else to_device(mask, device) for mask in (graph.train_mask, graph.val_mask, graph.test_mask))
        self.train_index = self.masks[0].nonzero().flatten()  # index_select: cheaper than a mask, forward and backward
        self.train_labels = self.y[self.train_index]

    def loss(self, model: torch.nn.Module, h: Tensor, epoch: int) -> Tensor:
        return node_loss(h.index_select(0, self.train_index), self.train_labels)

    def evaluate(self, model: torch.nn.Module, h: Tensor) -> Evaluation:
        return accuracy_evaluation(SplitCounts.of(h, self.y, self.masks).accuracies())


class PartNodes(Objective):
    """A worker's owned rows: the summed loss of its training nodes over the training nodes of all workers."""

    def __init__(self, part: Part, comm: Communicator, device: torch.device):
        self.comm = comm
        self.y = to_device(part.y[: part.num_owned], device)
        owned = lambda mask: None if mask is None else to_device(mask[: part.num_owned], device)  # noqa: E731
        self.masks: Masks = (owned(part.train_mask), owned(part.val_mask), owned(part.test_mask))
        train_count = torch.tensor([float(self.masks[0].sum()) if self.masks[0] is not None else 0.0], dtype=torch.float64, device=device)
        self.num_train_global = float(comm.all_reduce_sum(train_count))
        if self.num_train_global == 0:
            raise ValueError("No part has training nodes ('train_mask' is empty everywhere)")

    def loss(self, model: torch.nn.Module, h: Tensor, epoch: int) -> Tensor:
        train_mask = self.masks[0]
        return node_loss(h[train_mask], self.y[train_mask], reduction="sum") / self.num_train_global

    def evaluate(self, model: torch.nn.Module, h: Tensor) -> Evaluation:
        return accuracy_evaluation(SplitCounts.of(h, self.y, self.masks).summed(self.comm).accuracies())


class NodeBatches(BatchObjective):
    """Mini-batches of training nodes: the seeds are the nodes, the target their labels.

    Args:
        items: ``[n]`` ids of the training nodes (the ids the sampler takes).
        y: labels of every id, on the training device.
    """

    items_name = "training nodes"

    def __init__(self, items: Tensor, y: Tensor):
        self.items, self.y = items, y

    def seed_nodes(self, items: Tensor) -> tuple[Tensor, Tensor]:
        return items, self.y.index_select(0, to_device(items, self.y.device))

    def loss(self, model: torch.nn.Module, h: Tensor, target: Tensor) -> tuple[Tensor, int]:
        return node_loss(h, target, reduction="sum"), target.size(0)
