"""Partitioners: the base classes, the registry and the built-ins.

``resolve_partitioner("metis", balance=("nodes", "edges")).partition(graph, 4, seed=0)``.
Built-ins are listed in :data:`gnndist.registry.PARTITIONERS` and imported on first use; third-party
partitioners register through the entry-point group ``gnndist.partitioners``.
"""
from gnndist.partitioners.base import (
    PARTITIONERS,
    Partitioner,
    PartitionResult,
    VertexCutPartitioner,
    available_partitioners,
    register_partitioner,
    resolve_partitioner,
)

__all__ = [
    "PARTITIONERS",
    "PartitionResult",
    "Partitioner",
    "VertexCutPartitioner",
    "available_partitioners",
    "register_partitioner",
    "resolve_partitioner",
]
