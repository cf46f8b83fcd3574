"""Partition quality: edge cut, halo sizes, replication, balance, exchange volume, time and memory
(the partitioner's memory is measured by :class:`gnndist.memory.PeakMemory`)."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gnndist.graph import Graph
from gnndist.partition.halo import ExchangePlan, exchange_bytes

if TYPE_CHECKING:
    from gnndist.hetero import HomogeneousView
    from gnndist.partitioners.base import PartitionResult


def _balance(values: Tensor) -> float:
    """max / mean of per-part values (1.0 is perfect; 1.0 when every value is 0)."""
    mean = values.double().mean()
    return float(values.max() / mean) if mean > 0 else 1.0


@dataclasses.dataclass
class QualityReport:
    """Quality of one partitioning, computed from the graph and the owner of every node.

    Attributes:
        method, num_parts, seed: what produced the partitioning.
        num_nodes, num_edges: size of the graph (directed edges as stored).
        edges_cut: directed edges whose ends are owned by different parts.
        edge_cut_fraction: ``edges_cut / num_edges``.
        undirected_edges_cut: distinct node pairs ``{u, v}`` (u != v) split between parts, the
            number METIS-style tools report for an undirected graph.
        owned_nodes, owned_edges, train_nodes: per part: owned nodes, their in-edges, their
            train nodes (``train_nodes`` is None without a train mask).
        halo_nodes: per part, 1-hop halo nodes (the rows one full-graph layer exchange brings in).
        send_rows: per part, rows it sends per layer exchange (its nodes held as halo elsewhere, with multiplicity).
        replication_factor: ``(num_nodes + sum(halo_nodes)) / num_nodes``: copies per node.
        vertex_cut_replication_factor: for vertex-cut partitioners, the mean number of parts
            holding an edge of each node (a node without edges counts 1); else None.
        node_balance, edge_balance, train_balance: max / mean of the per-part counts.
        feature_width: row width used for the exchange prediction.
        exchange_bytes_per_layer: ``sum(halo_nodes) * feature_width * 4`` (fp32 rows, one direction).
        partition_time_s, peak_memory_bytes, memory_increase_bytes: cost of the partitioner.
        partition_task_peak_bytes: for a partition built by Ray tasks (``partition_chunked``), the largest
            peak RSS of any of its tasks; None for a partition built in one process.
        type_balance: for a heterogeneous graph's view, per node type the max / mean of its owned nodes per part.
        relation_cut: for a heterogeneous graph's view, per relation (``src__relation__dst``) the fraction of its
            edges whose ends are owned by different parts.
    """

    method: str
    num_parts: int
    seed: int
    num_nodes: int
    num_edges: int
    edges_cut: int
    edge_cut_fraction: float
    undirected_edges_cut: int
    owned_nodes: list[int]
    owned_edges: list[int]
    train_nodes: list[int] | None
    halo_nodes: list[int]
    send_rows: list[int]
    replication_factor: float
    vertex_cut_replication_factor: float | None
    node_balance: float
    edge_balance: float
    train_balance: float | None
    feature_width: int
    exchange_bytes_per_layer: int
    partition_time_s: float
    peak_memory_bytes: int
    memory_increase_bytes: int
    partition_task_peak_bytes: int | None = None
    type_balance: dict[str, float] | None = None
    relation_cut: dict[str, float] | None = None

    @classmethod
    def compute(cls, graph: Graph, result: "PartitionResult", *, plan: ExchangePlan | None = None, feature_width: int | None = None, types: "HomogeneousView | None" = None) -> "QualityReport":
        """Measures ``result`` on ``graph``.

        Args:
            graph: the partitioned graph.
            result: the partitioning.
            plan: the exchange plan if already built (else it is built here).
            feature_width: row width for the exchange prediction; default the graph's feature
                width, 128 for a graph without features.
            types: when ``graph`` is a heterogeneous graph's view (``types.graph``), its node and edge types:
                the report adds the balance of every node type and the cut of every relation.
        """
        node_part, num_parts = result.node_part, result.num_parts
        if plan is None:
            plan = ExchangePlan.build(graph, node_part, num_parts)
        if feature_width is None:
            feature_width = graph.num_features or 128
        if feature_width < 1:
            raise ValueError(f"Expected feature_width >= 1 (got {feature_width})")
        src, dst = graph.indices, graph.dst()
        cut = node_part[src] != node_part[dst]
        edges_cut = int(cut.sum())
        lo, hi = torch.minimum(src[cut], dst[cut]), torch.maximum(src[cut], dst[cut])
        undirected_edges_cut = int(torch.unique(lo * graph.num_nodes + hi).numel())
        typed = {} if types is None else _typed_quality(types, node_part, num_parts, cut)
        del src, dst, cut, lo, hi
        owned_edges = torch.zeros(num_parts, dtype=torch.long).index_add_(0, node_part, graph.in_degrees())
        train_nodes = None
        if graph.train_mask is not None:
            train_nodes = torch.bincount(node_part[graph.train_mask], minlength=num_parts)
        report = cls.from_counts(
            result,
            num_edges=graph.num_edges,
            edges_cut=edges_cut,
            undirected_edges_cut=undirected_edges_cut,
            owned_edges=owned_edges,
            train_nodes=train_nodes,
            exchange_counts=plan.counts,
            feature_width=feature_width,
            vertex_cut_replication_factor=None if result.edge_part is None else vertex_cut_replication(graph, result.edge_part, num_parts),
        )
        return dataclasses.replace(report, **typed)

    @classmethod
    def from_counts(
        cls,
        result: "PartitionResult",
        *,
        num_edges: int,
        edges_cut: int,
        undirected_edges_cut: int,
        owned_edges: Tensor,
        train_nodes: Tensor | None,
        exchange_counts: Tensor,
        feature_width: int,
        vertex_cut_replication_factor: float | None = None,
        partition_task_peak_bytes: int | None = None,
    ) -> "QualityReport":
        """The report from counts already summed over the graph (by :meth:`compute`, or by the tasks of
        ``partition_chunked``, which never hold the graph); ``exchange_counts`` is ``ExchangePlan.counts``."""
        node_part, num_parts = result.node_part, result.num_parts
        num_nodes = node_part.numel()
        owned_nodes = torch.bincount(node_part, minlength=num_parts)
        halo_nodes = exchange_counts.sum(dim=0)
        return cls(
            method=result.method,
            num_parts=num_parts,
            seed=result.seed,
            num_nodes=num_nodes,
            num_edges=num_edges,
            edges_cut=edges_cut,
            edge_cut_fraction=edges_cut / num_edges if num_edges else 0.0,
            undirected_edges_cut=undirected_edges_cut,
            owned_nodes=owned_nodes.tolist(),
            owned_edges=owned_edges.tolist(),
            train_nodes=None if train_nodes is None else train_nodes.tolist(),
            halo_nodes=halo_nodes.tolist(),
            send_rows=exchange_counts.sum(dim=1).tolist(),
            replication_factor=(num_nodes + int(halo_nodes.sum())) / num_nodes,
            vertex_cut_replication_factor=vertex_cut_replication_factor,
            node_balance=_balance(owned_nodes),
            edge_balance=_balance(owned_edges),
            train_balance=None if train_nodes is None else _balance(train_nodes),
            feature_width=feature_width,
            exchange_bytes_per_layer=exchange_bytes(exchange_counts, feature_width),
            partition_time_s=result.time_s,
            peak_memory_bytes=result.peak_memory_bytes,
            memory_increase_bytes=result.memory_increase_bytes,
            partition_task_peak_bytes=partition_task_peak_bytes,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "QualityReport":
        """Rebuilds a report from :meth:`to_dict` output; missing or unknown keys are a ValueError."""
        fields = dataclasses.fields(cls)
        names = {field.name for field in fields}
        optional = {field.name for field in fields if field.default is not dataclasses.MISSING}  # added later: older files lack them
        missing, unknown = sorted(names - optional - set(values)), sorted(set(values) - names)
        if missing or unknown:
            raise ValueError(f"Quality report keys do not match: missing {missing}, unknown {unknown}")
        return cls(**values)

    def table(self) -> str:
        """A printable text table: one row per part, then the totals."""
        header = ["part", "owned nodes", "in-edges", "train nodes", "halo (1-hop)", "rows sent"]
        rows = [
            [str(p), f"{self.owned_nodes[p]:,}", f"{self.owned_edges[p]:,}", "-" if self.train_nodes is None else f"{self.train_nodes[p]:,}", f"{self.halo_nodes[p]:,}", f"{self.send_rows[p]:,}"]
            for p in range(self.num_parts)
        ]
        widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
        line = lambda cells: "  ".join(cell.rjust(width) for cell, width in zip(cells, widths))  # noqa: E731
        train = "-" if self.train_balance is None else f"{self.train_balance:.3f}"
        lines = [
            f"Partition quality: {self.method}, {self.num_parts} parts, {self.num_nodes:,} nodes, {self.num_edges:,} edges (seed {self.seed})",
            line(header),
            *(line(row) for row in rows),
            f"edge cut: {self.edges_cut:,} of {self.num_edges:,} directed edges ({100 * self.edge_cut_fraction:.2f} %), {self.undirected_edges_cut:,} undirected",
            f"balance (max/mean): nodes {self.node_balance:.3f}, edges {self.edge_balance:.3f}, train {train}",
            f"replication factor: {self.replication_factor:.3f}"
            + ("" if self.vertex_cut_replication_factor is None else f" (vertex cut: {self.vertex_cut_replication_factor:.3f})"),
            f"exchange per full-graph layer: {_human_bytes(self.exchange_bytes_per_layer)} at width {self.feature_width} (fp32)",
            f"partitioning: {self.partition_time_s:.2f} s, peak memory {_human_bytes(self.peak_memory_bytes)} (+{_human_bytes(self.memory_increase_bytes)})"
            + ("" if self.partition_task_peak_bytes is None else f", largest task peak {_human_bytes(self.partition_task_peak_bytes)}"),
        ]
        if self.type_balance is not None:
            lines.append("balance per node type (max/mean): " + ", ".join(f"{name} {value:.3f}" for name, value in self.type_balance.items()))
        if self.relation_cut is not None:
            lines.append("edge cut per relation: " + ", ".join(f"{name} {100 * value:.2f} %" for name, value in self.relation_cut.items()))
        return "\n".join(lines)


def _typed_quality(types: "HomogeneousView", node_part: Tensor, num_parts: int, cut: Tensor) -> dict[str, dict[str, float]]:
    """Per node type the balance of its owned nodes, per relation the fraction of its edges that are cut
    (``cut`` is over the view's edges in CSR order, the order of ``types.edge_type``)."""
    from gnndist.hetero import edge_type_name

    type_balance = {name: _balance(torch.bincount(node_part[types.node_type == index], minlength=num_parts)) for index, name in enumerate(types.node_types)}
    relation_cut = {}
    for index, edge_type in enumerate(types.edge_types):
        of_relation = cut[types.edge_type == index]
        relation_cut[edge_type_name(edge_type)] = float(of_relation.double().mean()) if of_relation.numel() else 0.0
    return {"type_balance": type_balance, "relation_cut": relation_cut}


def vertex_cut_replication(graph: Graph, edge_part: Tensor, num_parts: int) -> float:
    """Mean number of parts that hold at least one edge of each node (a node without edges counts 1)."""
    n = graph.num_nodes
    present = torch.zeros(n * num_parts, dtype=torch.bool)
    present[graph.indices * num_parts + edge_part] = True
    present[graph.dst() * num_parts + edge_part] = True
    copies = present.view(n, num_parts).sum(dim=1).clamp(min=1)
    return float(copies.double().mean())


def _human_bytes(value: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value} B"

