"""``aggregation="auto"``: graph classes, the built-in ranking, measured tables and their errors."""
from __future__ import annotations

import json

import pytest
import torch

from gnndist.aggregation import GraphStats, SelectionTable, resolve_aggregation, select_backend
from gnndist.aggregation.native_kernel import native_status
from gnndist.block import Block
from gnndist.graph import DegreeStats, Graph


def star(num_nodes: int) -> Block:
    """Every node points at node 0: one hub, the rest without in-edges (extreme skew)."""
    src = torch.arange(1, num_nodes)
    return Block.from_graph(Graph.from_edge_index(torch.stack([src, torch.zeros_like(src)]), num_nodes))


def cycle(num_nodes: int) -> Block:
    src = torch.arange(num_nodes)
    return Block.from_graph(Graph.from_edge_index(torch.stack([src, (src + 1) % num_nodes]), num_nodes))


def test_graph_classes():
    assert GraphStats.of(cycle(100)).graph_class == "tiny/regular"
    assert GraphStats.of(cycle(20_000)).graph_class == "small/regular"
    assert GraphStats.of(star(100)).graph_class == "tiny/powerlaw"
    stats = GraphStats.of(cycle(50))
    assert stats.avg_degree == 1.0 and stats.max_in_degree == 1 and stats.degree_cv == 0.0


def test_builtin_choice_runs_here():
    block = cycle(100)
    for reduce in ("sum", "mean", "max"):
        name = select_backend(block, reduce, table=SelectionTable())
        assert resolve_aggregation(name).supports(block, reduce) is None
    if native_status()[0]:
        assert select_backend(block, "sum", table=SelectionTable()) == "gnndist_csr"


def test_statistics_alone_choose_what_the_block_would():
    """A graph that is never loaded (a chunked folder) is judged by its sizes and recorded degree statistics."""
    graph = Graph.from_edge_index(torch.stack([torch.arange(1, 20_000), torch.zeros(19_999, dtype=torch.long)]), 20_000)
    stats = GraphStats.of_whole_graph(graph.num_nodes, graph.num_edges, DegreeStats.of(graph.in_degrees()))
    assert stats == GraphStats.of(graph) and stats.graph_class == "small/powerlaw"
    table = SelectionTable({"cpu": {"small/powerlaw": {"sum": ["csc_spmm"]}}})
    assert select_backend(stats, "sum", table=table) == select_backend(graph, "sum", table=table) == "csc_spmm"
    assert "dense" in resolve_aggregation("dense_gemm").supports(stats, "sum")


def test_measured_table_wins_and_unavailable_entries_are_passed_over(tmp_path):
    block = cycle(100)
    table = SelectionTable({"cpu": {"tiny/regular": {"sum": ["dgl_gspmm", "not_registered", "csc_spmm", "csr_spmm"]}}})
    path = table.save(tmp_path / "selection.json", suite="test")
    expected = "dgl_gspmm" if resolve_aggregation("dgl_gspmm").supports(block, "sum") is None else "csc_spmm"
    assert select_backend(block, "sum", table=path) == expected
    assert select_backend(block, "sum", table=SelectionTable.load(path)) == expected
    # another class or reducer falls back to the built-in ranking
    assert select_backend(star(100), "sum", table=path) == select_backend(star(100), "sum", table=SelectionTable())


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="Expected reduce in"):
        select_backend(cycle(10), "min")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"no_rankings": 1}))
    with pytest.raises(ValueError, match="broken.json"):
        select_backend(cycle(10), "sum", table=broken)
