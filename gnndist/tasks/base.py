"""The task interface: what a run learns (its targets, loss, metrics), apart from how and where it trains.

A :class:`Task` turns the loaded dataset into the graph every mode trains on plus the task's targets
(:meth:`Task.prepare`, once, before partitioning), then gives each trainer an :class:`Objective` bound to
the rows that trainer holds: the whole graph (:meth:`Task.whole_graph`) or one part of a distributed
run (:meth:`Task.part`). Trainers run the model and call the objective; they never ask which task runs.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from gnndist.comm import Communicator
    from gnndist.graph import Graph
    from gnndist.partition import Part, PartitionBook
    from gnndist.train.metrics import EpochMetrics


@dataclass
class Evaluation:
    """What evaluating a task gives, already reduced over workers: metric name -> value (None: no such split).

    Names are ``<split>_<metric>``: ``train_acc``/``val_acc``/``test_acc`` for node classification (the
    :class:`~gnndist.train.metrics.EpochMetrics` fields), ``val_auc``, ``test_hits@50``, ``val_mrr`` ... for
    link prediction (kept in ``EpochMetrics.extra``).
    """

    values: dict[str, float | None] = field(default_factory=dict)

    def apply(self, metrics: "EpochMetrics") -> None:
        """Writes the values into ``metrics``: its own fields where it has one, ``extra`` otherwise."""
        for name, value in self.values.items():
            if hasattr(metrics, name) and name != "extra":
                setattr(metrics, name, value)
            elif value is not None:
                metrics.extra[name] = value


@dataclass(frozen=True)
class TaskGraph:
    """The graph every mode trains on (message passing, partitioned) and the task's targets beyond it.

    Attributes:
        graph: the graph the model runs over (link prediction: the held-out edges removed).
        targets: what the objective scores besides the graph's node data (link: a ``LinkSplit``), or None.
    """

    graph: "Graph"
    targets: Any = None


class Objective(abc.ABC):
    """One trainer's share of a task: the training loss and the evaluation of the model's output rows."""

    @abc.abstractmethod
    def loss(self, model: "torch.nn.Module", h: "Tensor", epoch: int) -> "Tensor":
        """The training loss of epoch ``epoch`` from the model's output rows ``h`` (this trainer's share of the
        global loss: distributed workers' losses sum to the single-process loss)."""

    @abc.abstractmethod
    def evaluate(self, model: "torch.nn.Module", h: "Tensor") -> Evaluation:
        """Metrics of the eval-mode output rows ``h``, reduced over workers (equal to single-process)."""


class Task(abc.ABC):
    """What a run learns; built from the ``task`` config section (``gnndist.registry.TASKS``).

    Attributes:
        name: the registered name.
        headline: the metric that picks the best epoch (``val_<headline>``) and heads the summary.
        needs_labels: the dataset must have labels ``y``.
        decoder: the registered decoder on top of the encoder's rows (``gnndist.registry.DECODERS``), or None.
        extra_hops: halo rings a mini-batch worker's sampling graph needs beyond the model's layers (seed nodes
            may lie that far from its owned nodes).
    """

    name: ClassVar[str]
    headline: ClassVar[str]
    needs_labels: ClassVar[bool] = False
    extra_hops: ClassVar[int] = 0
    decoder: str | None = None

    def prepare(self, graph: "Graph", seed: int) -> TaskGraph:
        """The graph every mode trains on and the targets (done once, before partitioning); default: the graph as it is."""
        return TaskGraph(graph)

    @abc.abstractmethod
    def output_width(self, num_classes: int, hidden: int) -> int:
        """Width of the encoder's output rows."""

    @abc.abstractmethod
    def whole_graph(self, graph: "Graph", targets: Any, device: "torch.device", seed: int) -> Objective:
        """The objective of a trainer holding every node's rows (in global id order)."""

    @abc.abstractmethod
    def part(self, part: "Part", source: Any, targets: Any, comm: "Communicator", device: "torch.device", seed: int) -> Objective:
        """The objective of a distributed worker holding the owned rows of ``part`` (in local id order);
        ``source`` (a ``PartSource``) loads the partition book when the task needs it."""

    @abc.abstractmethod
    def minibatch(self, part: "Part", book: "PartitionBook | None", targets: Any, device: "torch.device", seed: int, rank: int) -> "BatchObjective":
        """The mini-batch objective of a worker training on ``part`` (rank 0 of one part: the single-process reference)."""


class BatchObjective(abc.ABC):
    """A mini-batch trainer's share of a task: its training items (nodes, edges), the seed nodes of a batch
    of them, and the batch's summed loss.

    Attributes:
        items: ``[n]`` this trainer's training items; the seed loader shuffles and batches them.
        items_name: what an item is, for messages ("training nodes").
    """

    items: "Tensor"
    items_name: ClassVar[str]

    def attach(self, local: Any) -> None:
        """Binds the worker's sampling graph (a ``LocalGraph``), once it is built; default: nothing to bind."""

    def set_epoch(self, epoch: int) -> None:
        """Restarts the objective's random stream for ``epoch`` (negatives); default: none."""

    @abc.abstractmethod
    def seed_nodes(self, items: "Tensor") -> tuple["Tensor", Any]:
        """``(distinct seed node ids to sample around, the batch's target)`` of a batch of ``items``."""

    @abc.abstractmethod
    def loss(self, model: "torch.nn.Module", h: "Tensor", target: Any) -> tuple["Tensor", int]:
        """``(summed loss, items)`` of a batch from the model's output rows ``h`` of its seed nodes."""
