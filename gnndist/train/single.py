"""The single-process full-graph reference trainer: the oracle every distributed mode is checked against."""
from __future__ import annotations

import time
from typing import Any

import torch
from torch.nn.utils import parameters_to_vector

from gnndist.block import Block
from gnndist.device import to_device
from gnndist.graph import Graph
from gnndist.hetero import HeteroBlock, HeteroGraph
from gnndist.models import ModelSpec
from gnndist.seeding import dropout_seed
from gnndist.tasks import resolve_task
from gnndist.tasks.base import Evaluation, Task
from gnndist.train.metrics import EpochMetrics, Masks, SplitCounts


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
        graph: validated Graph with features (and what the task needs: labels and a train mask for ``node``),
            or a HeteroGraph: the model reads every type's inputs over the typed structure and the task scores
            the target type's rows.
        spec: the model and optimizer to build (the same every distributed worker builds).
        device: where the model, the structure and the node data live (``gnndist.device.resolve_device``).
        task: what is learnt (default: node classification); ``targets`` its targets beyond the graph
            (``Task.prepare``; None for node classification).
    """

    def __init__(self, graph: Graph | HeteroGraph, spec: ModelSpec, device: torch.device | str = "cpu", task: Task | None = None, targets: Any = None):
        self.graph, self.spec, self.device = graph, spec, torch.device(device)
        if isinstance(graph, HeteroGraph):
            self.objective = (task or resolve_task()).whole_graph(graph.nodes[graph.schema().target], targets, self.device, spec.seed)
            self.block: Block | HeteroBlock = graph.block().to(self.device)
            self.x: torch.Tensor | dict[str, torch.Tensor] = {t: to_device(x, self.device) for t, x in graph.inputs().items()}
        else:
            self.objective = (task or resolve_task()).whole_graph(graph, targets, self.device, spec.seed)
            if graph.x is None:
                raise ValueError("Training needs node features 'x'")
            self.block = Block.from_graph(graph).to(self.device)
            self.x = to_device(graph.x, self.device)
        self.model, self.optimizer = spec.build(self.device)

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics:
        torch.manual_seed(dropout_seed(self.spec.seed, epoch))
        start = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.objective.loss(self.model, self.model(self.x, self.block), epoch)
        loss.backward()
        self.optimizer.step()
        loss_value = loss.item()  # the one host sync of a step: the metric the driver reports
        metrics = EpochMetrics(epoch=epoch, loss=loss_value, epoch_time_s=time.perf_counter() - start)
        if evaluate:
            self.evaluate().apply(metrics)
        return metrics

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        """The task's metrics with the model in eval mode (no dropout), every layer over all in-edges."""
        self.model.eval()
        return self.objective.evaluate(self.model, self.model(self.x, self.block))
