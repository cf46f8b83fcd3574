"""The mode interface and what a job hands a mode: its config and its data."""
from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from gnndist.config import JobConfig
    from gnndist.graph import Graph
    from gnndist.models import ModelSpec
    from gnndist.runtime import WorkerGroup
    from gnndist.tasks.base import Task, TaskGraph
    from gnndist.train.fullgraph import PartSource
    from gnndist.train.loop import EpochTrainer


@dataclass(eq=False)
class JobData:
    """A job's inputs as a mode sees them.

    Attributes:
        config: the validated job config.
        partition_dir: the partition directory (for modes with ``partitioned``), else None.
        sources: where each worker loads its part (for modes with ``distributed``), else empty.
    """

    config: "JobConfig"
    partition_dir: Path | None = None
    sources: "list[PartSource] | None" = None

    @functools.cached_property
    def task(self) -> "Task":
        """What the job learns (``task`` section)."""
        from gnndist.tasks import resolve_task

        return resolve_task(self.config.task)

    @functools.cached_property
    def prepared(self) -> "TaskGraph":
        """The dataset, loaded on first use, as the task prepares it (link prediction: its edge split)."""
        from gnndist.data import load_dataset

        return self.task.prepare(load_dataset(self.config.dataset.name, **self.config.dataset.options()), self.config.train.seed)

    @property
    def graph(self) -> "Graph":
        """The graph every mode trains on (partitioned, fingerprinted for partitions and checkpoints)."""
        return self.prepared.graph

    @property
    def targets(self):
        """The task's targets beyond the graph (``TaskGraph.targets``), handed to every trainer."""
        return self.prepared.targets

    @functools.cached_property
    def spec(self) -> "ModelSpec":
        """The model and optimizer every process builds (built once here: a model that does not fit fails before any worker starts)."""
        from gnndist.models import ModelSpec

        graph = self.graph
        if graph.x is None or (self.task.needs_labels and graph.y is None):
            raise ValueError(f"Dataset {self.config.dataset.name!r} has no node features 'x' or labels 'y': nothing to train on")
        spec = ModelSpec.from_config(self.config, graph.num_features, graph.num_classes)
        spec.check()
        return spec


class Mode(abc.ABC):
    """How a job trains.

    Attributes:
        name: the registered name.
        partitioned: the job partitions the graph (or reuses a partition directory) before ``start``.
        distributed: the job starts Ray and one worker per part (a ``WorkerGroup`` joined in a
            torch.distributed group) before ``start``.
        tasks: the tasks (``task.name``) the mode trains.
    """

    name: ClassVar[str]
    partitioned: ClassVar[bool] = False
    distributed: ClassVar[bool] = False
    tasks: ClassVar[tuple[str, ...]] = ("node",)

    @abc.abstractmethod
    def start(self, group: "WorkerGroup | None", data: JobData) -> "EpochTrainer":
        """The trainer of this job; ``group`` is None unless the mode is ``distributed``."""
