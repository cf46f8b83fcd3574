"""Partitioner base classes, the partition result and the partitioner registry.

A partitioner has one public method, :meth:`Partitioner.partition`, that validates its inputs,
measures time and peak memory, and calls one hook: ``_assign`` (edge-cut: the owner part of every
node) or, for :class:`VertexCutPartitioner`, ``_assign_edges`` (the part of every edge).
"""
from __future__ import annotations

import abc
import dataclasses
import time
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np
import torch
from torch import Tensor

from gnndist.graph import Graph
from gnndist.memory import PeakMemory
from gnndist.registry import PARTITIONERS

P = TypeVar("P", bound="Partitioner")


@dataclasses.dataclass(eq=False)
class PartitionResult:
    """The outcome of one partitioning: the owner part of every node (and, for vertex cuts, of every edge).

    Attributes:
        node_part: ``[num_nodes]`` int64 owner part of each node, in ``[0, num_parts)``; no part is empty.
        num_parts: number of parts.
        method: registered name of the partitioner.
        options: the partitioner's options (JSON-compatible), as stored in ``meta.json``.
        seed: the seed the partitioning used.
        time_s: wall-clock seconds spent in the partitioner.
        peak_memory_bytes: peak resident memory of the process while partitioning.
        memory_increase_bytes: ``peak_memory_bytes`` minus the resident memory at the start.
        edge_part: ``[num_edges]`` int64 part of each edge (CSR order) for vertex-cut partitioners, else None.
    """

    node_part: Tensor
    num_parts: int
    method: str
    options: dict[str, Any]
    seed: int
    time_s: float
    peak_memory_bytes: int
    memory_increase_bytes: int
    edge_part: Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return self.node_part.numel()

    def part_sizes(self) -> Tensor:
        """``[num_parts]`` owned nodes per part."""
        return torch.bincount(self.node_part, minlength=self.num_parts)


class Partitioner(abc.ABC):
    """Base class of edge-cut partitioners: subclasses implement :meth:`_assign`.

    Built-ins are dataclasses whose fields are their options; :meth:`options` reports them.
    A minimal plug-in::

        class Mine(Partitioner):
            def _assign(self, graph, num_parts, *, seed):
                return torch.arange(graph.num_nodes) % num_parts
    """

    name: ClassVar[str] = ""

    def partition(self, graph: Graph, num_parts: int, *, seed: int = 0) -> PartitionResult:
        """Assigns every node of ``graph`` to one of ``num_parts`` parts.

        Args:
            graph: the graph to split.
            num_parts: number of parts, in ``[1, graph.num_nodes]``.
            seed: seed of every random choice; the same seed gives the same result.

        Returns:
            A :class:`PartitionResult` in which every part owns at least one node: a part the
            algorithm left empty gets one node (the highest id) of the currently largest part.

        Raises:
            TypeError: ``graph`` is not a Graph, or ``num_parts``/``seed`` are not ints.
            ValueError: ``num_parts`` out of range, or the hook returned an invalid assignment.
        """
        if not isinstance(graph, Graph):
            raise TypeError(f"Expected a gnndist Graph to partition (got {type(graph).__name__})")
        num_parts = _check_int("num_parts", num_parts)
        seed = _check_int("seed", seed)
        if not 1 <= num_parts <= graph.num_nodes:
            raise ValueError(f"Expected num_parts in [1, {graph.num_nodes}] (got {num_parts})")
        start = time.perf_counter()
        with PeakMemory() as memory:
            node_part, edge_part = self._assignments(graph, num_parts, seed)
        elapsed = time.perf_counter() - start
        node_part = _check_assignment(self.method_name, "node", node_part, graph.num_nodes, num_parts)
        if edge_part is not None:
            edge_part = _check_assignment(self.method_name, "edge", edge_part, graph.num_edges, num_parts)
        return PartitionResult(
            node_part=fill_empty_parts(node_part, num_parts),
            num_parts=num_parts,
            method=self.method_name,
            options=self.options(),
            seed=seed,
            time_s=elapsed,
            peak_memory_bytes=memory.peak_bytes,
            memory_increase_bytes=memory.increase_bytes,
            edge_part=edge_part,
        )

    @property
    def method_name(self) -> str:
        """The registered name (the class name for unregistered partitioners)."""
        return self.name or type(self).__name__

    def options(self) -> dict[str, Any]:
        """The options that, with the seed, determine the result (dataclass fields), JSON-compatible."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {field.name: _jsonable(getattr(self, field.name)) for field in dataclasses.fields(self)}

    def _assignments(self, graph: Graph, num_parts: int, seed: int) -> tuple[Any, Any]:
        if num_parts == 1:
            return torch.zeros(graph.num_nodes, dtype=torch.long), None
        return self._assign(graph, num_parts, seed=seed), None

    @abc.abstractmethod
    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> Tensor | np.ndarray:
        """Returns the ``[num_nodes]`` owner part of every node; inputs are already validated."""


class VertexCutPartitioner(Partitioner):
    """Base class of vertex-cut partitioners: subclasses implement :meth:`_assign_edges`.

    Edges are assigned to parts and nodes are replicated wherever their edges are. To build
    edge-cut style parts (owned nodes + halo) from the edge assignment, each node is owned by the
    part that holds most of its in-edges (ties: the lowest part id); a node without in-edges by
    the part holding most of its out-edges; a node without edges round-robin over the parts.
    """

    def _assignments(self, graph: Graph, num_parts: int, seed: int) -> tuple[Any, Any]:
        if num_parts == 1:
            return torch.zeros(graph.num_nodes, dtype=torch.long), torch.zeros(graph.num_edges, dtype=torch.long)
        edge_part = _check_assignment(self.method_name, "edge", self._assign_edges(graph, num_parts, seed=seed), graph.num_edges, num_parts)
        return owners_from_edge_parts(graph, edge_part, num_parts), edge_part

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> Tensor:
        return self._assignments(graph, num_parts, seed)[0]

    @abc.abstractmethod
    def _assign_edges(self, graph: Graph, num_parts: int, *, seed: int) -> Tensor | np.ndarray:
        """Returns the ``[num_edges]`` part of every edge in CSR order; inputs are already validated."""


def owners_from_edge_parts(graph: Graph, edge_part: Tensor, num_parts: int) -> Tensor:
    """The owner of each node under a vertex cut: the part with most of its in-edges (see VertexCutPartitioner)."""
    n = graph.num_nodes
    in_counts = torch.bincount(graph.dst() * num_parts + edge_part, minlength=n * num_parts).view(n, num_parts)
    out_counts = torch.bincount(graph.indices * num_parts + edge_part, minlength=n * num_parts).view(n, num_parts)
    owner = in_counts.argmax(dim=1)
    no_in = in_counts.sum(dim=1) == 0
    owner[no_in] = out_counts[no_in].argmax(dim=1)
    isolated = no_in & (out_counts.sum(dim=1) == 0)
    owner[isolated] = torch.arange(int(isolated.sum())) % num_parts
    return owner


def fill_empty_parts(node_part: Tensor, num_parts: int) -> Tensor:
    """Gives every empty part one node (the highest id) of the currently largest part; needs num_parts <= num_nodes."""
    sizes = torch.bincount(node_part, minlength=num_parts)
    empty = (sizes == 0).nonzero().flatten().tolist()
    if not empty:
        return node_part
    node_part = node_part.clone()
    for part in empty:
        largest = int(sizes.argmax())
        node = int((node_part == largest).nonzero().max())
        node_part[node] = part
        sizes[largest] -= 1
        sizes[part] += 1
    return node_part


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Expected '{name}' to be an int (got {type(value).__name__} {value!r})")
    return int(value)


def _check_assignment(method: str, what: str, assignment: Any, expected_length: int, num_parts: int) -> Tensor:
    """Validates a hook's output: ``[expected_length]`` integers in ``[0, num_parts)``, returned as int64."""
    tensor = torch.as_tensor(np.asarray(assignment) if not isinstance(assignment, Tensor) else assignment)
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(f"Partitioner {method!r} returned {what} parts of dtype {tensor.dtype}; expected integers")
    if tensor.shape != (expected_length,):
        raise ValueError(f"Partitioner {method!r} returned {what} parts of shape {tuple(tensor.shape)}; expected [{expected_length}]")
    tensor = tensor.to(torch.long)
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= num_parts):
        raise ValueError(f"Partitioner {method!r} returned {what} parts in [{int(tensor.min())}, {int(tensor.max())}]; expected [0, {num_parts - 1}]")
    return tensor


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------- registry
def register_partitioner(name: str) -> Callable[[type[P]], type[P]]:
    """Class decorator registering a partitioner under ``name`` (a second use of a name is an error)."""

    def decorator(cls: type[P]) -> type[P]:
        PARTITIONERS.register(name)(cls)
        cls.name = name
        return cls

    return decorator


def resolve_partitioner(name_or_instance: str | Partitioner, **options: Any) -> Partitioner:
    """Builds the partitioner registered as ``name_or_instance`` with ``options``, or returns an instance as is.

    Raises:
        KeyError: an unknown name (the message lists the available ones).
        TypeError: an option the partitioner does not take, or options given with an instance.
    """
    partitioner = PARTITIONERS.resolve(name_or_instance, **options)
    if not isinstance(partitioner, Partitioner):
        raise TypeError(f"Partitioner {name_or_instance!r} built a {type(partitioner).__name__}, not a gnndist Partitioner")
    if isinstance(name_or_instance, str) and partitioner.method_name != name_or_instance and not type(partitioner).name:
        partitioner.name = name_or_instance  # a plug-in from an entry point knows itself by its entry-point name
    return partitioner


def available_partitioners() -> list[str]:
    """Sorted names of every partitioner, built-ins and entry-point plug-ins."""
    return PARTITIONERS.available()
