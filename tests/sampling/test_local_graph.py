"""The local sampling graph: a part's rings on disk, extended through the owners' graph stores (in-process stores)."""
from __future__ import annotations

import pytest
import torch

from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.partition import PartitionBook, build_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.sampling import NeighborSampler, SeedLoader
from gnndist.sampling.local_graph import build_local_graph
from gnndist.store import StoreClient, local_stores


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_dataset("sbm", num_nodes=800, avg_degree=6, feature_dim=8, num_classes=4, seed=1)


def parts_of(graph: Graph, num_parts: int, halo_hops: int, method: str = "metis"):
    """The parts and the partition book of ``graph``."""
    result = resolve_partitioner(method).partition(graph, num_parts, seed=0)
    return build_parts(graph, result, halo_hops=halo_hops), PartitionBook.from_assignment(result.node_part, num_parts)


def row_edges(graph_ids, indptr, indices, rows):
    """{global dst: [global srcs in CSR order]} of ``rows``."""
    return {int(graph_ids[r]): graph_ids[indices[indptr[r] : indptr[r + 1]]].tolist() for r in rows}


@pytest.mark.parametrize("num_parts", [2, 4])
@pytest.mark.parametrize("hops", [2, 3])
def test_rings_from_stores_equal_rings_on_disk(graph, num_parts, hops):
    """A part written with one halo ring, extended through the stores, is the part written with ``hops`` rings."""
    thin, book = parts_of(graph, num_parts, 1)
    thick, _ = parts_of(graph, num_parts, hops)
    client = StoreClient(local_stores(thin))
    for small, full in zip(thin, thick):
        local = build_local_graph(small, hops, client, book)
        assert local.ring_sizes == full.num_halo_per_hop
        assert torch.equal(local.global_ids, full.global_ids)
        assert torch.equal(local.owner, full.halo_owner)
        assert torch.equal(local.in_degree, full.in_degree)
        with_edges = range(local.num_local - local.ring_sizes[-1])
        assert row_edges(local.global_ids, local.indptr, local.indices, with_edges) == row_edges(full.global_ids, full.indptr, full.indices, with_edges)
        assert int(local.indptr[-1]) == local.indices.numel() == int(full.indptr[-1])
        assert local.structure_bytes > 0


def test_ring_requests_go_once_to_each_owner_of_the_frontier(graph):
    (thin, book), hops = parts_of(graph, 4, 1), 3
    client = StoreClient(local_stores(thin))
    local = build_local_graph(thin[0], hops, client, book)
    frontiers = [local.owner[sum(local.ring_sizes[:ring]) : sum(local.ring_sizes[: ring + 1])] for ring in range(hops - 1)]
    assert client.stats.requests == sum(len(set(owners.tolist())) for owners in frontiers)


def test_extra_rings_on_disk_are_dropped(graph):
    part = parts_of(graph, 2, 3)[0][0]
    local = build_local_graph(part, 2)
    assert local.ring_sizes == part.num_halo_per_hop[:2]
    assert local.num_local == part.num_owned + sum(part.num_halo_per_hop[:2])
    outer = range(local.num_local - local.ring_sizes[-1], local.num_local)
    assert all(int(local.indptr[r + 1] - local.indptr[r]) == 0 for r in outer)
    assert int(local.indices.max()) < local.num_local


def test_a_thin_part_without_stores_is_an_error(graph):
    (parts, book) = parts_of(graph, 2, 1)
    with pytest.raises(ValueError, match="pass the stores"):
        build_local_graph(parts[0], 2)
    with pytest.raises(ValueError, match="and the partition book"):
        build_local_graph(parts[0], 2, StoreClient(local_stores(parts)))
    with pytest.raises(ValueError, match="hops >= 1"):
        build_local_graph(parts[0], 0)


def test_sampling_on_the_local_graph_stays_in_it_and_follows_real_edges(graph):
    parts, book = parts_of(graph, 3, 1, method="random")
    client = StoreClient(local_stores(parts))
    edges = set(map(tuple, graph.edge_index().t().tolist()))
    for part in parts:
        local = build_local_graph(part, 3, client, book)
        sampler = NeighborSampler(local.indptr, local.indices, [4, 3, 2], seed=0, src_degree=local.in_degree)
        train = part.train_mask[: part.num_owned].nonzero().flatten()
        for seeds in SeedLoader(train, 32, seed=0).batches(0):
            batch = sampler.sample(seeds)
            ids = local.global_ids[batch.input_nodes]
            for block in batch.blocks:
                src, dst = ids[block.indices], ids[block.dst()]
                assert set(zip(src.tolist(), dst.tolist())) <= edges
                assert torch.equal(block.src_degree, graph.in_degrees()[ids[: block.num_src]])


def test_csr_order_is_the_stable_sort_of_the_answers_edges_by_row():
    """Answers list each frontier row once, in owner order; the edges' CSR order computed from offsets is the
    stable argsort of their rows (rows without edges included)."""
    from gnndist.sampling.local_graph import _csr_order

    generator = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 4, (50,), generator=generator)
    counts[:5] = 0
    answer_rows = torch.randperm(50, generator=generator)
    expected = torch.argsort(torch.repeat_interleave(answer_rows, counts[answer_rows]), stable=True)
    assert torch.equal(_csr_order(counts, answer_rows), expected)
