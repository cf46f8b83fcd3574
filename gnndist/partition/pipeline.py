"""Partition a graph into a directory in one call, reusing a matching directory when asked."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gnndist.graph import Graph
from gnndist.hetero import HeteroGraph
from gnndist.partition.format import PartitionMeta, Progress, check_replaceable, load_meta, partition_key, save_partition


def partition_graph(
    graph: Graph | HeteroGraph,
    method: Any,
    num_parts: int,
    directory: str | os.PathLike,
    *,
    seed: int = 0,
    halo_hops: int = 1,
    options: dict[str, Any] | None = None,
    force: bool = False,
    reuse: bool = False,
    feature_width: int | None = None,
    progress: bool | Progress = False,
) -> tuple[PartitionMeta, bool]:
    """Resolves ``method``, partitions ``graph`` and writes the partition directory.

    Args:
        graph: the graph; a heterogeneous graph is partitioned as its homogeneous view (its parts are typed
            again by whoever trains on them, :mod:`gnndist.partition.hetero`), with per-type balance and
            per-relation cut in the quality report.
        method: a partitioner name (see ``available_partitioners()``) or a Partitioner instance.
        num_parts: number of parts.
        directory: target directory.
        seed: partitioner seed.
        halo_hops: halo rings per part.
        options: partitioner options (with a name only).
        force: replace an existing directory.
        reuse: if ``directory`` holds a partition of this graph with the same method, options,
            seed, num_parts and halo_hops, return it instead of partitioning again.
        feature_width: row width for the exchange prediction in the quality report.
        progress: progress bar (True) or callback, see :func:`save_partition`.

    Returns:
        ``(meta, reused)``.
    """
    from gnndist.partitioners import resolve_partitioner

    partitioner = resolve_partitioner(method, **(options or {}))
    types = None
    if isinstance(graph, HeteroGraph):
        types = graph.to_homogeneous()
        graph = types.graph
    directory = Path(directory)
    if reuse and not force and (directory / "meta.json").is_file():
        meta = load_meta(directory)
        key = partition_key(graph.fingerprint(), partitioner.method_name, partitioner.options(), seed, num_parts, halo_hops)
        if meta.key == key:
            return meta, True
        raise FileExistsError(f"Partition directory {directory} holds a different partition (key {meta.key}, wanted {key}); pass --force to replace it")
    check_replaceable(directory, force)  # before partitioning: a refused directory costs nothing
    result = partitioner.partition(graph, num_parts, seed=seed)
    meta = save_partition(graph, result, directory, halo_hops=halo_hops, force=force, feature_width=feature_width, progress=progress, types=types)
    return meta, False
