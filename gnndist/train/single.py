"""The single-process full-graph reference trainer: the oracle every distributed mode is checked against."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector

from gnndist.block import Block
from gnndist.device import to_device
from gnndist.graph import Graph
from gnndist.models import ModelSpec
from gnndist.seeding import dropout_seed
from gnndist.train.metrics import EpochMetrics, Masks, SplitCounts


def node_loss(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for single-label ``y``, binary cross-entropy for multi-label (float) ``y``."""
    if y.is_floating_point():
        return F.binary_cross_entropy_with_logits(logits, y, reduction=reduction)
    return F.cross_entropy(logits, y, reduction=reduction)


class ModelState:
    """``parameters_vector``, ``state_dict`` and ``load_state_dict`` of a trainer holding ``model`` and ``optimizer``."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer

    def parameters_vector(self) -> torch.Tensor:
        return parameters_to_vector(self.model.parameters()).detach()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


@torch.no_grad()
def evaluate_whole_graph(model: torch.nn.Module, x: torch.Tensor, block: Block, y: torch.Tensor, masks: Masks) -> tuple[float | None, float | None, float | None]:
    """Accuracy on train/val/test with the model in eval mode (no dropout), every layer over all in-edges."""
    model.eval()
    return SplitCounts.of(model(x, block), y, masks).accuracies()


class SingleProcessTrainer(ModelState):
    """Full-graph training of one model on the whole graph in this process.

    Args:
        graph: validated Graph with features, labels and a train mask.
        spec: the model and optimizer to build (the same every distributed worker builds).
        device: where the model, the structure and the node data live (``gnndist.device.resolve_device``).
    """

    def __init__(self, graph: Graph, spec: ModelSpec, device: torch.device | str = "cpu"):
        if graph.x is None or graph.y is None:
            raise ValueError("Training needs node features 'x' and labels 'y'")
        if graph.train_mask is None or not bool(graph.train_mask.any()):
            raise ValueError("The graph has no training nodes ('train_mask' is missing or all False)")
        self.graph, self.spec, self.device = graph, spec, torch.device(device)
        self.model, self.optimizer = spec.build(self.device)
        self.block = Block.from_graph(graph).to(self.device)
        self.x, self.y = to_device(graph.x, self.device), to_device(graph.y, self.device)
        self.masks: Masks = tuple(None if mask is None else to_device(mask, self.device) for mask in (graph.train_mask, graph.val_mask, graph.test_mask))
        self.train_index = self.masks[0].nonzero().flatten()  # index_select: cheaper than a mask, forward and backward
        self.train_labels = self.y[self.train_index]

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics:
        torch.manual_seed(dropout_seed(self.spec.seed, epoch))
        start = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad()
        logits = self.model(self.x, self.block)
        loss = node_loss(logits.index_select(0, self.train_index), self.train_labels)
        loss.backward()
        self.optimizer.step()
        loss_value = loss.item()  # the one host sync of a step: the metric the driver reports
        metrics = EpochMetrics(epoch=epoch, loss=loss_value, epoch_time_s=time.perf_counter() - start)
        if evaluate:
            metrics.train_acc, metrics.val_acc, metrics.test_acc = self.evaluate()
        return metrics

    def evaluate(self) -> tuple[float | None, float | None, float | None]:
        """Accuracy on train/val/test with the model in eval mode (no dropout)."""
        return evaluate_whole_graph(self.model, self.x, self.block, self.y, self.masks)
