"""The mode interface and what a job hands a mode: its config and its data."""
from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from gnndist.config import JobConfig
    from gnndist.data.chunked import ChunkedGraph
    from gnndist.graph import Graph, GraphInfo
    from gnndist.hetero import HeteroSchema
    from gnndist.models import ModelSpec
    from gnndist.partition.format import PartitionMeta
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
        partition: its meta (quality report included), as the job prepared it, else None.
        sources: where each worker loads its part (for modes with ``distributed``), else empty.
    """

    config: "JobConfig"
    partition_dir: Path | None = None
    partition: "PartitionMeta | None" = None
    sources: "list[PartSource] | None" = None

    @functools.cached_property
    def task(self) -> "Task":
        """What the job learns (``task`` section)."""
        from gnndist.tasks import resolve_task

        return resolve_task(self.config.task)

    @functools.cached_property
    def chunked(self) -> "ChunkedGraph | None":
        """The dataset's chunked folder, opened (``meta.json`` only), for a ``chunked:PATH`` dataset; else None, and
        None for a typed folder too: a heterogeneous graph is loaded (:meth:`ChunkedGraph.to_hetero`) and trained
        like any in-memory HeteroGraph."""
        from gnndist.data.chunked import open_chunked
        from gnndist.data.registry import split_spec

        kind, path = split_spec(self.config.dataset.name)
        if kind != "chunked":
            return None
        if self.task.name != "node":
            raise ValueError(f"task.name={self.task.name!r} prepares its own graph (an edge split) and needs a dataset loaded in memory; dataset.name={self.config.dataset.name!r} is chunked (task.name=node trains on it)")
        folder = open_chunked(path, **self.config.dataset.options())
        return folder if folder.types is None else None

    @functools.cached_property
    def prepared(self) -> "TaskGraph":
        """The dataset, loaded on first use, as the task prepares it (link prediction: its edge split). Only
        single-process modes, and jobs on a dataset that is not chunked (to partition it), load it: a
        distributed job on a chunked dataset never does."""
        from gnndist.data import load_dataset
        from gnndist.hetero import HeteroGraph

        graph = load_dataset(self.config.dataset.name, **self.config.dataset.options())
        if isinstance(graph, HeteroGraph) and self.task.name != "node":
            raise ValueError(f"dataset.name={self.config.dataset.name!r} is a heterogeneous graph: task.name={self.task.name!r} is not yet supported for heterogeneous graphs (task.name=node trains on them)")
        return self.task.prepare(graph, self.config.train.seed)

    @property
    def graph(self) -> "Graph":
        """The graph every mode trains on (partitioned, fingerprinted for partitions and checkpoints)."""
        return self.prepared.graph

    @property
    def targets(self):
        """The task's targets beyond the graph (``TaskGraph.targets``), handed to every trainer (a chunked
        dataset is a node task's, which has none: the graph stays unloaded)."""
        return None if self.chunked is not None else self.prepared.targets

    @functools.cached_property
    def info(self) -> "GraphInfo":
        """Sizes, widths and fingerprint of the dataset: from ``meta.json`` for a chunked dataset, else from the loaded graph."""
        return self.chunked.info() if self.chunked is not None else self.graph.info()

    @functools.cached_property
    def spec(self) -> "ModelSpec":
        """The model and optimizer every process builds (built once here: a model that does not fit fails before any worker starts)."""
        from gnndist.hetero import HeteroGraph
        from gnndist.models import ModelSpec

        if self.chunked is None and isinstance(self.graph, HeteroGraph):
            return self._hetero_spec(self.graph)
        info = self.info
        if info.num_features == 0 or (self.task.needs_labels and not info.has_labels):
            raise ValueError(f"Dataset {self.config.dataset.name!r} has no node features 'x' or labels 'y': nothing to train on")
        spec = ModelSpec.from_config(self.config, info.num_features, info.num_classes)
        spec.check()
        return spec

    def _hetero_spec(self, graph) -> "ModelSpec":
        """The spec of a heterogeneous graph (the model reads its schema), for the modes that train on one."""
        from gnndist.models import ModelSpec
        from gnndist.registry import MODES

        config = self.config
        schema = graph.schema()
        MODES.get(config.mode).check_heterogeneous(config, schema)
        spec = ModelSpec.from_config(config, schema.num_features[schema.target], graph.nodes[schema.target].num_classes, schema=schema)
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
        heterogeneous: the mode trains on heterogeneous graphs (``HeteroGraph`` datasets, e.g. ``hsbm``).
    """

    name: ClassVar[str]
    partitioned: ClassVar[bool] = False
    distributed: ClassVar[bool] = False
    tasks: ClassVar[tuple[str, ...]] = ("node",)
    heterogeneous: ClassVar[bool] = False

    @classmethod
    def check_heterogeneous(cls, config: "JobConfig", schema: "HeteroSchema") -> None:
        """Raises ValueError naming what of ``config`` this mode cannot train on a heterogeneous graph of ``schema``
        (checked before anything starts); by default the mode itself, unless it declares ``heterogeneous``."""
        if not cls.heterogeneous:
            from gnndist.registry import MODES

            supported = [name for name in MODES.available() if MODES.get(name).heterogeneous]
            raise ValueError(f"dataset.name={config.dataset.name!r} is a heterogeneous graph: mode={config.mode!r} is not yet supported for heterogeneous graphs (modes that train on them: {', '.join(supported)})")

    @abc.abstractmethod
    def start(self, group: "WorkerGroup | None", data: JobData) -> "EpochTrainer":
        """The trainer of this job; ``group`` is None unless the mode is ``distributed``."""
