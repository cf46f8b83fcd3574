"""Parts: halo layout by hand on a ring, exchange plan and full-graph layer equal to the whole graph."""
from __future__ import annotations

import pytest
import torch

from gnndist.block import Block
from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.partition import ExchangePlan, PartitionBook, assemble_graph, build_parts
from gnndist.partitioners import resolve_partitioner


def ring(n: int = 8) -> Graph:
    src = torch.arange(n)
    graph = Graph.from_edge_index(torch.stack([src, (src + 1) % n]), n, x=torch.arange(float(n)).view(n, 1), y=src % 2)
    return graph.to_undirected().with_(train_mask=src < 4)


def exchange(parts, rows_by_part):
    """What ``all_to_all_single`` delivers: for every part, the rows every other part sends it, in part order."""
    sent = [rows[part.send_indices].split(part.send_counts.tolist()) for part, rows in zip(parts, rows_by_part)]
    return [torch.cat([sent[sender][receiver] for sender in range(len(parts))]) for receiver in range(len(parts))]


def aggregate(block: Block, rows: torch.Tensor, gcn: bool = False) -> torch.Tensor:
    """Sum (or GCN-normalised sum, with self loops and whole-graph degrees) over a block's in-edges."""
    dst = torch.repeat_interleave(torch.arange(block.num_dst), block.indptr.diff())
    weight = block.edge_weight if block.edge_weight is not None else torch.ones(block.num_edges)
    if gcn:
        inv_sqrt = (block.src_degree.float() + 1).pow(-0.5)
        weight = weight * inv_sqrt[block.indices] * inv_sqrt[dst]
    out = torch.zeros(block.num_dst, rows.size(1)).index_add_(0, dst, rows[block.indices] * weight[:, None])
    if gcn:
        out += rows[: block.num_dst] * inv_sqrt[: block.num_dst, None].square()
    return out


def test_ring_two_parts_by_hand():
    graph = ring(8)
    parts = build_parts(graph, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    first, second = parts
    assert first.global_ids.tolist() == [0, 1, 2, 3, 4, 7]  # owned, then halo by (owner, global id)
    assert second.global_ids.tolist() == [4, 5, 6, 7, 0, 3]
    assert (first.num_owned, first.num_halo_per_hop, first.halo_owner.tolist()) == (4, [2], [1, 1])
    # node 0 pulls from 1 and 7 (local 1, 5); the halo rows (outermost ring) have no edges
    assert first.indptr.tolist() == [0, 2, 4, 6, 8, 8, 8]
    assert first.indices[:2].tolist() == [1, 5]
    assert first.in_degree.tolist() == [2] * 6
    # part 0 sends its nodes 0 and 3 (local 0, 3) to part 1 and receives 4 and 7 from it
    assert (first.send_indices.tolist(), first.send_counts.tolist(), first.recv_counts.tolist()) == ([0, 3], [0, 2], [0, 2])
    assert first.train_mask.tolist() == [True, True, True, True, False, False]
    assert second.train_mask.tolist() == [False] * 6  # halo rows never train
    assert first.x[:, 0].tolist() == [0, 1, 2, 3, 4, 7]
    block = first.block()
    assert (block.num_dst, block.num_src, block.num_edges) == (4, 6, 8)
    assert block.src_degree.tolist() == [2] * 6


def test_two_hop_halo_rings():
    graph = ring(8)
    first = build_parts(graph, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), halo_hops=2)[0]
    assert first.global_ids.tolist() == [0, 1, 2, 3, 4, 7, 5, 6]
    assert first.num_halo_per_hop == [2, 2]
    assert first.halo_slice(1) == slice(4, 6) and first.halo_slice(2) == slice(6, 8)
    # ring-1 rows keep all their in-edges (node 4 pulls from 3 and 5), ring-2 rows none
    assert first.indptr.tolist() == [0, 2, 4, 6, 8, 10, 12, 12, 12]
    assert first.global_ids[first.indices[8:10]].tolist() == [3, 5]
    with pytest.raises(ValueError, match=r"Expected hop in \[1, 2\] \(got 3\)"):
        first.halo_slice(3)
    # the full-graph block still only reaches the 1-hop ring
    assert first.block().num_src == 6


@pytest.mark.parametrize("halo_hops", [0, -1, True])
def test_halo_hops_must_be_positive(halo_hops):
    with pytest.raises(ValueError, match="Expected halo_hops >= 1"):
        build_parts(ring(), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), halo_hops=halo_hops)


@pytest.fixture(scope="module")
def directed_sbm() -> Graph:
    graph = load_dataset("sbm", num_nodes=400, num_classes=4, avg_degree=6, feature_dim=5, seed=1)
    keep = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(0)) < 0.7  # make it directed
    edge_index = graph.edge_index()[:, keep]
    weight = torch.rand(int(keep.sum()), generator=torch.Generator().manual_seed(1))
    return Graph.from_edge_index(edge_index, graph.num_nodes, edge_weight=weight, **graph.node_data())


@pytest.mark.parametrize("method", ["metis", "random", "hdrf"])
@pytest.mark.parametrize("halo_hops", [1, 2])
def test_full_graph_layer_on_parts_equals_whole_graph(method, halo_hops, directed_sbm):
    graph = directed_sbm
    result = resolve_partitioner(method).partition(graph, 3, seed=0)
    parts = build_parts(graph, result, halo_hops=halo_hops)
    h = torch.randn(graph.num_nodes, 7, generator=torch.Generator().manual_seed(2))
    expected_sum = aggregate(Block.from_graph(graph), h)
    expected_gcn = aggregate(Block.from_graph(graph), h, gcn=True)
    owned_rows = [h[part.owned_global_ids] for part in parts]
    received = exchange(parts, owned_rows)
    for part, own, halo in zip(parts, owned_rows, received):
        assert torch.equal(halo, h[part.global_ids[part.halo_slice(1)]])
        assert torch.equal(part.halo_owner[: part.num_halo_per_hop[0]].bincount(minlength=3), part.recv_counts)
        block = part.block()
        rows = torch.cat([own, halo])
        torch.testing.assert_close(aggregate(block, rows), expected_sum[part.owned_global_ids])
        torch.testing.assert_close(aggregate(block, rows, gcn=True), expected_gcn[part.owned_global_ids])
        assert torch.equal(part.in_degree, graph.in_degrees()[part.global_ids])
    assert torch.equal(assemble_graph(parts).indices, graph.indices)


def test_exchange_plan_counts_match_halos(directed_sbm):
    node_part = resolve_partitioner("random").partition(directed_sbm, 4).node_part
    plan = ExchangePlan.build(directed_sbm, node_part, 4)
    assert torch.equal(plan.counts.diagonal(), torch.zeros(4, dtype=torch.long))
    for part in range(4):
        halo = plan.halo_nodes(part)
        sources = directed_sbm.indices[node_part[directed_sbm.dst()] == part]
        expected = sources[node_part[sources] != part].unique()
        assert torch.equal(halo.sort().values, expected)
        assert torch.equal(node_part[halo], torch.repeat_interleave(torch.arange(4), plan.recv_counts(part)))
    assert plan.bytes_per_layer(16) == int(plan.counts.sum()) * 16 * 4


def test_partition_book_round_trip(directed_sbm):
    node_part = resolve_partitioner("random").partition(directed_sbm, 3).node_part
    book = PartitionBook.from_assignment(node_part, 3)
    parts = build_parts(directed_sbm, node_part)
    for part in parts:
        assert torch.equal(book.owned_nodes(part.part_id), part.owned_global_ids)
        owner, local = book.to_local(part.owned_global_ids)
        assert bool((owner == part.part_id).all()) and torch.equal(local, torch.arange(part.num_owned))
        assert torch.equal(book.to_global(part.part_id, torch.arange(part.num_owned)), part.owned_global_ids)
    everything = torch.arange(directed_sbm.num_nodes)
    assert torch.equal(book.to_global(*book.to_local(everything)), everything)
    assert book.owned_counts().tolist() == node_part.bincount().tolist()


def test_partition_book_rejects_bad_ids():
    book = PartitionBook.from_assignment(torch.tensor([0, 1, 0, 1, 1]), 2)
    with pytest.raises(ValueError, match=r"Expected global ids in \[0, 4\] \(got 0..5\)"):
        book.to_local([0, 5])
    with pytest.raises(ValueError, match=r"Local id 2 is not owned by part 0 \(it owns 2 nodes\)"):
        book.to_global(0, [2])
    with pytest.raises(ValueError, match=r"Expected parts in \[0, 1\] \(got 2..2\)"):
        book.to_global(2, [0])
    with pytest.raises(TypeError, match="Expected integer ids"):
        book.to_local([0.5])
