"""``aggregation="auto"``: pick the fastest backend for a graph from measurements.

The benchmark harness (``gnndist bench aggregation``) ranks the backends per graph class, reducer
and device and writes ``selection.json`` (``--save-selection FILE`` writes it where the user says);
:func:`select_backend` takes the first backend of that ranking that can run the block at hand. A
measured table is used only when a run points at it (``aggregation.selection=FILE``): otherwise
``auto`` follows :data:`BUILTIN_RANKING`, derived from the measurements in ``benchmarks/README.md``, so
a run's numerics never depend on files left in the user's home. Runs record what ``auto`` chose
(:func:`auto_choices`).

A graph class is ``"<size>/<skew>"``: size ``tiny`` (at most 8192 nodes: a dense matrix fits),
``small`` (at most 1M edges) or ``large``; skew from the coefficient of variation of the in-degree:
``regular`` (< 0.5, e.g. uniform random), ``skewed`` (< 3, e.g. SBM, citation graphs) or ``powerlaw``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from gnndist.aggregation.base import AGGREGATIONS, REDUCERS, Aggregation, resolve_aggregation
from gnndist.block import Block
from gnndist.graph import DegreeStats, Graph

TINY_NODES = 8192
SMALL_EDGES = 1_000_000
REGULAR_CV = 0.5
POWERLAW_CV = 3.0

# Measured on the 2-core CPU and on an H100 (benchmarks/README.md): the first backend that runs wins.
BUILTIN_RANKING: dict[str, dict[str, list[str]]] = {
    "cpu": {
        "sum": ["gnndist_csr", "dgl_gspmm", "csr_spmm"],
        "mean": ["gnndist_csr", "dgl_gspmm", "csr_spmm"],
        "max": ["gnndist_csr", "dgl_gspmm", "csr_spmm", "coo_index_add"],
    },
    "cuda": {
        "sum": ["gnndist_csr", "dgl_gspmm", "csr_spmm"],
        "mean": ["gnndist_csr", "dgl_gspmm", "csr_spmm"],
        "max": ["csr_segment", "dgl_gspmm", "coo_index_add"],
    },
}


@dataclass(frozen=True)
class GraphStats:
    """What the choice of backend depends on.

    Attributes:
        num_src, num_dst, num_edges: block sizes.
        max_in_degree: largest in-degree.
        degree_cv: standard deviation / mean of the in-degree (0 for an empty block).
        device: where the block lives. With the sizes, all a backend's ``supports`` reads, so a choice can be
            made from the statistics alone (:func:`select_backend`).
    """

    num_src: int
    num_dst: int
    num_edges: int
    max_in_degree: int
    degree_cv: float

    device: torch.device = torch.device("cpu")

    @classmethod
    def of(cls, block: Block | Graph) -> "GraphStats":
        block = Block.from_graph(block) if isinstance(block, Graph) else block
        degrees = DegreeStats.of(block.in_degree())
        return cls(block.num_src, block.num_dst, block.num_edges, degrees.max_in_degree, degrees.degree_cv, block.device)

    @classmethod
    def of_whole_graph(cls, num_nodes: int, num_edges: int, degrees: DegreeStats) -> "GraphStats":
        """A whole graph's statistics from its sizes and recorded :class:`DegreeStats` (on CPU), so that a graph
        that is never loaded (a chunked folder) gets the backend its loaded ``Block.from_graph`` would."""
        return cls(num_nodes, num_nodes, num_edges, degrees.max_in_degree, degrees.degree_cv)

    @property
    def avg_degree(self) -> float:
        return self.num_edges / max(self.num_dst, 1)

    @property
    def graph_class(self) -> str:
        if max(self.num_src, self.num_dst) <= TINY_NODES:
            size = "tiny"
        elif self.num_edges <= SMALL_EDGES:
            size = "small"
        else:
            size = "large"
        skew = "regular" if self.degree_cv < REGULAR_CV else "skewed" if self.degree_cv < POWERLAW_CV else "powerlaw"
        return f"{size}/{skew}"


@dataclass(frozen=True)
class SelectionTable:
    """Measured rankings: ``rankings[device][graph_class][reduce]`` = backend names, fastest first.

    Attributes:
        rankings: as above.
        source: where it was read from (a path), for messages.
    """

    rankings: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path) -> "SelectionTable":
        """Reads a ``selection.json`` written by the harness; raises ValueError naming the file when malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            rankings = data["rankings"]
            if not isinstance(rankings, dict):
                raise TypeError("'rankings' is not an object")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"Cannot read the aggregation selection table {path}: {error}") from error
        return cls(rankings, str(path))

    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Writes the table (plus ``metadata``: machine, suite, ...) atomically as JSON."""
        from gnndist.io import write_json

        path = Path(path)
        write_json(path, {"rankings": self.rankings, **metadata})
        return path

    def ranking(self, device: str, graph_class: str, reduce: str) -> list[str]:
        return list(self.rankings.get(device, {}).get(graph_class, {}).get(reduce, []))


def select_backend(block: Block | Graph | GraphStats, reduce: str, device: str | torch.device | None = None, table: SelectionTable | str | Path | None = None) -> str:
    """The name of the fastest aggregation backend that can run ``reduce`` over ``block``.

    Args:
        block: the structure to aggregate over (a Graph is taken as its whole-graph Block), or only its
            :class:`GraphStats` (what the choice depends on: a graph that is never loaded).
        reduce: "sum", "mean" or "max".
        device: where it will run (default: the block's device).
        table: a measured :class:`SelectionTable` or a path to one; None: only the built-in ranking.

    Returns:
        A name for ``resolve_aggregation``: the first of the measured ranking for this graph class,
        then of :data:`BUILTIN_RANKING`, whose ``supports()`` accepts the block; ``csr_spmm`` or
        ``coo_index_add`` as the last resort.
    """
    if reduce not in REDUCERS:
        raise ValueError(f"Expected reduce in {REDUCERS} (got {reduce!r})")
    block = Block.from_graph(block) if isinstance(block, Graph) else block
    device_type = torch.device(device).type if device is not None else block.device.type
    if device_type != block.device.type:
        block = replace(block, device=torch.device(device_type)) if isinstance(block, GraphStats) else block.to(device_type)
    if isinstance(table, (str, Path)):
        table = SelectionTable.load(table)
    stats = block if isinstance(block, GraphStats) else GraphStats.of(block)
    measured = table.ranking(device_type, stats.graph_class, reduce) if table is not None else []
    builtin = BUILTIN_RANKING.get(device_type, BUILTIN_RANKING["cpu"])[reduce]
    for name in [*measured, *builtin, "csr_spmm", "coo_index_add"]:
        if name != AutoAggregation.name and name in AGGREGATIONS.available() and resolve_aggregation(name).supports(block, reduce) is None:
            return name
    raise ValueError(f"No aggregation backend supports reduce={reduce!r} on {device_type} (tried {', '.join(dict.fromkeys([*measured, *builtin]))})")


class AutoAggregation(Aggregation):
    """``aggregation="auto"``: the backend :func:`select_backend` picks for each block, prepared and run as itself.

    Args:
        table: a measured :class:`SelectionTable` or its path (default: the built-in ranking only).
    """

    name = "auto"
    data_organization = "auto"
    propagation = "auto"
    backend = "gnndist"
    selector = True  # picks among the others: the harness does not time it as an abstraction of its own

    def __init__(self, table: SelectionTable | str | Path | None = None):
        self.table = table

    def supports(self, block: Block, reduce: str) -> str | None:
        try:
            select_backend(block, reduce, table=self.table)
        except ValueError as error:
            return str(error)
        return None

    def prepare(self, block: Block, reduce: str) -> tuple[Aggregation, Any]:
        chosen = resolve_aggregation(select_backend(block, reduce, table=self.table))
        return chosen, chosen.prepare(block, reduce)

    def run(self, state: tuple[Aggregation, Any], x: torch.Tensor) -> torch.Tensor:
        chosen, chosen_state = state
        return chosen.run(chosen_state, x)


def auto_choices(block: Block | Graph | GraphStats, table: SelectionTable | str | Path | None = None, device: str = "cpu") -> dict[str, str]:
    """What ``auto`` runs on ``block`` for every reducer (``{"sum": "gnndist_csr", ...}``): recorded by
    every run, and part of its identity, since backends differ in their last bits."""
    return {reduce: select_backend(block, reduce, device, table) for reduce in REDUCERS}
