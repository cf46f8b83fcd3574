"""Workloads for the cost model: from a partition's quality report, or from a graph's shape alone.

A quality report (:class:`gnndist.partition.quality.QualityReport`) gives every part's owned nodes and edges,
halo and send rows: exactly what the cost model needs. A graph too large to load is planned from its
*shape* (nodes, edges, feature width, classes, train nodes) with a **partitioner model**: the partitioner
runs on a small generated ``sbm`` proxy of the same average degree, and the proxy's per-part halo over owned
nodes and its edge-cut fraction are assumed to hold at the real size (an assumption: the cut of a real graph
depends on its community structure; the proxy's is that of a degree-corrected SBM).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gnndist.plan.model import PartLoad, Workload

if TYPE_CHECKING:
    from gnndist.config import JobConfig
    from gnndist.partition.quality import QualityReport
    from gnndist.plan.probe import BatchShape

PROXY_MIN_NODES, PROXY_NODES_PER_PART = 50_000, 400


@dataclass(frozen=True)
class GraphShape:
    """A graph's sizes, without the graph (``gnndist plan --shape nodes=111e6,edges=1.6e9,...``).

    ``halo`` (per-part halo nodes / owned nodes) and ``cut`` (edge-cut fraction) override the partitioner model.
    """

    nodes: int
    edges: int
    features: int
    classes: int
    train: int | None = None
    halo: float | None = None
    cut: float | None = None

    @classmethod
    def parse(cls, text: str) -> "GraphShape":
        """``nodes=111e6,edges=1.6e9,features=128,classes=172[,train=1.2e6][,halo=0.5][,cut=0.3]``."""
        values: dict[str, float] = {}
        for item in filter(None, (piece.strip() for piece in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep or name not in {"nodes", "edges", "features", "classes", "train", "halo", "cut"}:
                raise ValueError(f"--shape: {item!r} is not one of nodes=, edges=, features=, classes=, train=, halo=, cut=")
            try:
                values[name] = float(value)
            except ValueError:
                raise ValueError(f"--shape: {name}={value!r} is not a number") from None
            if values[name] < 0 or (name in {"nodes", "edges", "features", "classes"} and values[name] < 1):
                raise ValueError(f"--shape: {name} must be {'>= 1' if name in {'nodes', 'edges', 'features', 'classes'} else '>= 0'} (got {value})")
        missing = [name for name in ("nodes", "edges", "features", "classes") if name not in values]
        if missing:
            raise ValueError(f"--shape: missing {', '.join(missing)} (e.g. --shape nodes=111e6,edges=1.6e9,features=128,classes=172)")
        integer = lambda name: None if name not in values else int(values[name])  # noqa: E731
        return cls(int(values["nodes"]), int(values["edges"]), int(values["features"]), int(values["classes"]), integer("train"), values.get("halo"), values.get("cut"))


def widths_of(config: "JobConfig", features: int, classes: int) -> list[int]:
    return [features] + [config.model.hidden] * (config.model.layers - 1) + [classes]


def count_parameters(config: "JobConfig", features: int, classes: int) -> int:
    """Trainable parameters of the job's model (built once on the CPU: cheap, and exact for any model)."""
    from gnndist.models import ModelSpec

    model = ModelSpec.from_config(config, features, classes).build_model()
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def from_quality(
    config: "JobConfig", quality: "QualityReport", features: int, classes: int, *, mode: str, strategy: str, strategy_options: dict[str, Any] | None = None,
    num_params: int | None = None, batches: "list[BatchShape] | None" = None,
) -> Workload:
    """The workload of the job ``config`` on the partition ``quality`` describes (``batches``: each part's measured
    batch shape, :func:`gnndist.plan.probe.probe_batches`, for mini-batch jobs when the graph is at hand)."""
    train = quality.train_nodes or [0] * quality.num_parts
    parts = [PartLoad(quality.owned_nodes[p], quality.owned_edges[p], quality.halo_nodes[p], quality.send_rows[p], train[p], None if batches is None else batches[p]) for p in range(quality.num_parts)]
    return Workload(
        mode=mode,
        model=config.model.name,
        widths=widths_of(config, features, classes),
        parts=parts,
        num_params=count_parameters(config, features, classes) if num_params is None else num_params,
        strategy=strategy,
        strategy_options=dict(strategy_options or {}),
        edge_cut_fraction=quality.edge_cut_fraction,
        batch_size=config.train.batch_size,
        fanouts=hop_fanouts(config),
        source="partition",
    )


@dataclass(frozen=True)
class CutModel:
    """What a partitioner does to a graph of some average degree at ``num_parts`` parts, measured on a proxy."""

    method: str
    num_parts: int
    halo_per_owned: float
    edge_cut_fraction: float
    proxy_nodes: int

    @classmethod
    def measure(cls, method: str, options: dict[str, Any], num_parts: int, avg_degree: float, seed: int = 0) -> "CutModel":
        """Partitions an ``sbm`` proxy (``max(50k, 400 x P)`` nodes, the same average degree) and reads its quality."""
        from gnndist.data import load_dataset
        from gnndist.partition.quality import QualityReport
        from gnndist.partitioners import resolve_partitioner

        nodes = max(PROXY_MIN_NODES, PROXY_NODES_PER_PART * num_parts)
        graph = load_dataset("sbm", num_nodes=nodes, avg_degree=avg_degree, feature_dim=8, seed=seed)
        quality = QualityReport.compute(graph, resolve_partitioner(method, **options).partition(graph, num_parts, seed=seed), feature_width=8)
        return cls(method, num_parts, sum(quality.halo_nodes) / nodes, quality.edge_cut_fraction, nodes)


def from_shape(config: "JobConfig", shape: GraphShape, num_parts: int, cut: CutModel | None, *, mode: str, strategy: str, strategy_options: dict[str, Any] | None = None, num_params: int | None = None) -> Workload:
    """The workload of the job ``config`` on a graph of ``shape`` cut into ``num_parts`` balanced parts.

    Per part: ``nodes / P`` owned nodes and ``edges / P`` in-edges (perfect balance), ``halo x owned``
    halo nodes, as many send rows; ``halo`` and ``cut`` come from ``shape`` when given, else from ``cut``.
    """
    halo = shape.halo if shape.halo is not None else (cut.halo_per_owned if cut is not None and num_parts > 1 else 0.0)
    edge_cut = shape.cut if shape.cut is not None else (cut.edge_cut_fraction if cut is not None and num_parts > 1 else 0.0)
    owned, edges = math.ceil(shape.nodes / num_parts), math.ceil(shape.edges / num_parts)
    train = math.ceil((shape.train if shape.train is not None else shape.nodes) / num_parts)
    halo_nodes = int(min(halo * owned, shape.nodes - owned)) if num_parts > 1 else 0
    part = PartLoad(owned, edges, halo_nodes, halo_nodes, train)
    return Workload(
        mode=mode,
        model=config.model.name,
        widths=widths_of(config, shape.features, shape.classes),
        parts=[part] * num_parts,
        num_params=count_parameters(config, shape.features, shape.classes) if num_params is None else num_params,
        strategy=strategy,
        strategy_options=dict(strategy_options or {}),
        edge_cut_fraction=edge_cut,
        batch_size=config.train.batch_size,
        fanouts=hop_fanouts(config),
        source="shape",
    )


def hop_fanouts(config: "JobConfig") -> list[int]:
    """``train.fanouts`` as the list per hop the planner models; a mapping per relation is refused."""
    if isinstance(config.train.fanouts, dict):
        raise ValueError(f"train.fanouts={config.train.fanouts} is a mapping per relation: the planner models a list per hop (give train.fanouts as a list)")
    return list(config.train.fanouts)
