"""Registry, resolution and the base class contract (validation, hook checks, empty parts)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from gnndist.graph import Graph
from gnndist.partitioners import (
    PARTITIONERS,
    Partitioner,
    VertexCutPartitioner,
    available_partitioners,
    register_partitioner,
    resolve_partitioner,
)

BUILT_INS = {"fennel", "hdrf", "kahip", "kaminpar", "ldg", "metis", "random", "range"}


def path_graph(n: int = 6) -> Graph:
    src = torch.arange(n - 1)
    return Graph.from_edge_index(torch.stack([src, src + 1]), n).to_undirected()


class Constant(Partitioner):
    """Returns whatever it was built with, to exercise the base class checks."""

    def __init__(self, assignment):
        self.assignment = assignment

    def _assign(self, graph, num_parts, *, seed):
        return self.assignment


def test_every_built_in_is_available():
    assert BUILT_INS <= set(available_partitioners())
    assert available_partitioners() == sorted(available_partitioners())


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(KeyError, match=r"Unknown partitioner 'nope'; available: .*metis.*random"):
        resolve_partitioner("nope")


def test_resolve_builds_with_options_and_passes_instances_through():
    metis = resolve_partitioner("metis", balance=("nodes", "train"), imbalance=0.05)
    assert metis.options() == {"balance": ["nodes", "train"], "imbalance": 0.05, "recursive": None}
    assert resolve_partitioner(metis) is metis
    with pytest.raises(TypeError, match="already built"):
        resolve_partitioner(metis, imbalance=0.1)


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(TypeError, match=r"Unknown option 'bogus' for partitioner 'ldg'; accepted: imbalance, passes, order"):
        resolve_partitioner("ldg", bogus=1)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("metis", {"balance": ("nodes", "weird")}, "Expected 'balance'"),
        ("metis", {"imbalance": 0.0}, r"Expected imbalance in \(0, 1\) \(got 0.0\)"),
        ("ldg", {"order": "dfs"}, r"Expected order in \['bfs', 'random', 'natural'\] \(got 'dfs'\)"),
        ("fennel", {"passes": 0}, r"Expected passes >= 1 \(got 0\)"),
        ("fennel", {"gamma": 1.0}, r"Expected gamma > 1 \(got 1.0\)"),
        ("kahip", {"mode": "turbo"}, r"Expected mode in .*'fast'.*\(got 'turbo'\)"),
        ("kaminpar", {"preset": "turbo"}, r"Expected preset in .*\(got 'turbo'\)"),
        ("range", {"balance": "train"}, r"Expected balance in \['nodes', 'edges'\] \(got 'train'\)"),
        ("hdrf", {"epsilon": 0}, r"Expected epsilon > 0 \(got 0\)"),
    ],
)
def test_bad_options_fail_at_construction(name, options, message):
    with pytest.raises(ValueError, match=message):
        resolve_partitioner(name, **options)


def test_a_name_can_be_registered_once():
    with pytest.raises(ValueError, match="partitioner 'metis' is already registered"):
        register_partitioner("metis")(Constant)


def test_register_sets_the_name_used_in_results():
    name = "test-registry-roundrobin"

    @register_partitioner(name)
    @dataclasses.dataclass
    class RoundRobin(Partitioner):
        def _assign(self, graph, num_parts, *, seed):
            return torch.arange(graph.num_nodes) % num_parts

    try:
        result = resolve_partitioner(name).partition(path_graph(), 3)
        assert result.method == name
        assert result.node_part.tolist() == [0, 1, 2, 0, 1, 2]
    finally:
        PARTITIONERS.unregister(name)


@pytest.mark.parametrize("num_parts", [0, -1, 7])
def test_num_parts_out_of_range(num_parts):
    with pytest.raises(ValueError, match=rf"Expected num_parts in \[1, 6\] \(got {num_parts}\)"):
        resolve_partitioner("random").partition(path_graph(), num_parts)


@pytest.mark.parametrize("num_parts", [2.0, True, "2"])
def test_num_parts_must_be_an_int(num_parts):
    with pytest.raises(TypeError, match="Expected 'num_parts' to be an int"):
        resolve_partitioner("random").partition(path_graph(), num_parts)


def test_graph_must_be_a_graph():
    with pytest.raises(TypeError, match="Expected a gnndist Graph"):
        resolve_partitioner("random").partition(path_graph().edge_index(), 2)


@pytest.mark.parametrize(
    "assignment, message",
    [
        (torch.zeros(5, dtype=torch.long), r"returned node parts of shape \(5,\); expected \[6\]"),
        (torch.zeros(6), "returned node parts of dtype torch.float32; expected integers"),
        (torch.tensor([0, 1, 2, 0, 1, 3]), r"returned node parts in \[0, 3\]; expected \[0, 2\]"),
        (torch.tensor([0, 1, -1, 0, 1, 2]), r"returned node parts in \[-1, 2\]; expected \[0, 2\]"),
    ],
)
def test_invalid_hook_output_is_reported(assignment, message):
    with pytest.raises(ValueError, match=rf"Partitioner 'Constant' {message}"):
        Constant(assignment).partition(path_graph(), 3)


def test_empty_parts_get_a_node_from_the_largest_part():
    result = Constant([0, 0, 0, 0, 1, 1]).partition(path_graph(), 4)
    sizes = result.part_sizes().tolist()
    assert sizes == [2, 2, 1, 1]
    assert result.node_part.tolist() == [0, 0, 3, 2, 1, 1]  # part 2 takes node 3, then part 3 node 2


def test_result_records_method_options_seed_time_and_memory():
    result = resolve_partitioner("ldg", passes=2).partition(path_graph(), 2, seed=5)
    assert (result.method, result.seed, result.num_parts) == ("ldg", 5, 2)
    assert result.options == {"imbalance": 0.05, "passes": 2, "order": "bfs"}
    assert result.time_s >= 0 and result.peak_memory_bytes > 0 and result.memory_increase_bytes >= 0
    assert result.edge_part is None


def test_vertex_cut_owner_is_the_part_with_most_in_edges():
    # node 2 has in-edges from 0, 1, 3 (parts 0, 1, 1) -> owner 1; node 4 has none -> by out-edges.
    graph = Graph.from_edge_index(torch.tensor([[0, 1, 3, 4, 2], [2, 2, 2, 3, 0]]), 6)

    class ByEdgeList(VertexCutPartitioner):
        def _assign_edges(self, graph, num_parts, *, seed):
            parts = {(0, 2): 0, (1, 2): 1, (3, 2): 1, (4, 3): 1, (2, 0): 0}
            return torch.tensor([parts[(int(s), int(d))] for s, d in graph.edge_index().t()])

    result = ByEdgeList().partition(graph, 2)
    # node 0: in-edge from 2 in part 0; node 1: no in-edge, out-edge in part 1; node 2: parts 0,1,1 -> 1;
    # node 3: in-edge in part 1; node 4: out-edge in part 1; node 5: isolated -> round robin (first: part 0).
    assert result.node_part.tolist() == [0, 1, 1, 1, 1, 0]
    assert result.edge_part is not None and result.edge_part.numel() == graph.num_edges
