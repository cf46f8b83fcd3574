"""Partitioners: the base classes, the registry and the built-ins.

``resolve_partitioner("metis", balance=("nodes", "edges")).partition(graph, 4, seed=0)``.
Third-party partitioners register through the entry-point group ``gnndist.partitioners``.
"""
from gnndist.partitioners.base import (
    PARTITIONERS,
    PartitionResult,
    Partitioner,
    VertexCutPartitioner,
    available_partitioners,
    register_partitioner,
    resolve_partitioner,
)
from gnndist.partitioners import multilevel, simple, streaming, vertex_cut  # noqa: F401,E402  (register the built-ins)

__all__ = [
    "PARTITIONERS",
    "PartitionResult",
    "Partitioner",
    "VertexCutPartitioner",
    "available_partitioners",
    "register_partitioner",
    "resolve_partitioner",
]
