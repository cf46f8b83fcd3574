"""Partition stores and the local sampling graph built from them (in-process stores; Ray hosting is tested in tests/train)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.partition import build_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.sampling import NeighborSampler, SeedLoader
from gnndist.sampling.store import PartitionStore, RemoteFeatures, StoreClient, build_local_graph


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_dataset("sbm", num_nodes=800, avg_degree=6, feature_dim=8, num_classes=4, seed=1)


def parts_of(graph: Graph, num_parts: int, halo_hops: int, method: str = "metis"):
    return build_parts(graph, resolve_partitioner(method).partition(graph, num_parts, seed=0), halo_hops=halo_hops)


def row_edges(graph_ids, indptr, indices, rows):
    """{global dst: [global srcs in CSR order]} of ``rows``."""
    return {int(graph_ids[r]): graph_ids[indices[indptr[r] : indptr[r + 1]]].tolist() for r in rows}


def test_store_serves_owned_rows_only(graph):
    part = parts_of(graph, 3, 1)[1]
    store = PartitionStore(part)
    owned = part.owned_global_ids
    local = store.local_ids(owned[[5, 0, 7]].numpy())
    assert local.tolist() == [5, 0, 7]
    assert np.array_equal(store.features(local), graph.x[owned[[5, 0, 7]]].numpy())
    edges = store.in_edges(np.array([3, 1]))
    expected = [graph.indices[graph.indptr[v] : graph.indptr[v + 1]] for v in owned[[3, 1]].tolist()]
    assert edges.counts.tolist() == [e.numel() for e in expected]
    assert edges.sources.tolist() == torch.cat(expected).tolist()
    assert edges.source_degree.tolist() == graph.in_degrees()[torch.cat(expected)].tolist()
    node_part = resolve_partitioner("metis").partition(graph, 3, seed=0).node_part
    assert edges.source_owner.tolist() == node_part[torch.cat(expected)].tolist()
    not_owned = int((node_part != 1).nonzero()[0])
    with pytest.raises(KeyError, match=f"does not own node\\(s\\) \\[{not_owned}\\]"):
        store.local_ids(np.array([not_owned]))


@pytest.mark.parametrize("num_parts", [2, 4])
@pytest.mark.parametrize("hops", [2, 3])
def test_rings_from_stores_equal_rings_on_disk(graph, num_parts, hops):
    """A part written with one halo ring, extended through the stores, is the part written with ``hops`` rings."""
    thin = parts_of(graph, num_parts, 1)
    thick = parts_of(graph, num_parts, hops)
    client = StoreClient([PartitionStore(part) for part in thin])
    for small, full in zip(thin, thick):
        local = build_local_graph(small, hops, client)
        assert local.ring_sizes == full.num_halo_per_hop
        assert torch.equal(local.global_ids, full.global_ids)
        assert torch.equal(local.owner, full.halo_owner)
        assert torch.equal(local.in_degree, full.in_degree)
        with_edges = range(local.num_local - local.ring_sizes[-1])
        assert row_edges(local.global_ids, local.indptr, local.indices, with_edges) == row_edges(full.global_ids, full.indptr, full.indices, with_edges)
        assert int(local.indptr[-1]) == local.indices.numel() == int(full.indptr[-1])
        assert local.structure_bytes > 0


def test_extra_rings_on_disk_are_dropped(graph):
    part = parts_of(graph, 2, 3)[0]
    local = build_local_graph(part, 2)
    assert local.ring_sizes == part.num_halo_per_hop[:2]
    assert local.num_local == part.num_owned + sum(part.num_halo_per_hop[:2])
    outer = range(local.num_local - local.ring_sizes[-1], local.num_local)
    assert all(int(local.indptr[r + 1] - local.indptr[r]) == 0 for r in outer)
    assert int(local.indices.max()) < local.num_local


def test_a_thin_part_without_stores_is_an_error(graph):
    with pytest.raises(ValueError, match="pass the stores"):
        build_local_graph(parts_of(graph, 2, 1)[0], 2)
    with pytest.raises(ValueError, match="hops >= 1"):
        build_local_graph(parts_of(graph, 2, 1)[0], 0)


def test_sampling_on_the_local_graph_stays_in_it_and_follows_real_edges(graph):
    parts = parts_of(graph, 3, 1, method="random")
    client = StoreClient([PartitionStore(part) for part in parts])
    edges = set(map(tuple, graph.edge_index().t().tolist()))
    for part in parts:
        local = build_local_graph(part, 3, client)
        sampler = NeighborSampler(local.indptr, local.indices, [4, 3, 2], seed=0, src_degree=local.in_degree)
        train = part.train_mask[: part.num_owned].nonzero().flatten()
        for seeds in SeedLoader(train, 32, seed=0).batches(0):
            batch = sampler.sample(seeds)
            ids = local.global_ids[batch.input_nodes]
            for block in batch.blocks:
                src, dst = ids[block.indices], ids[block.dst()]
                assert set(zip(src.tolist(), dst.tolist())) <= edges
                assert torch.equal(block.src_degree, graph.in_degrees()[ids[: block.num_src]])


def test_remote_features_fetch_per_owner_in_request_order(graph):
    parts = parts_of(graph, 4, 1)
    client = StoreClient([PartitionStore(part) for part in parts])
    local = build_local_graph(parts[2], 2, client)
    remote = RemoteFeatures.locate(client, local.owner, local.global_ids[local.num_owned :])
    ids = torch.randperm(local.num_remote, generator=torch.Generator().manual_seed(0))[:100]
    client.stats.reset()
    rows = remote(ids)
    assert torch.equal(rows, graph.x[local.global_ids[local.num_owned + ids]])
    assert client.stats.requests == len(set(local.owner[ids].tolist()))  # one request per owner
    assert client.stats.bytes_received == rows.numel() * 4
    assert remote(ids[:0]).shape == (0, graph.num_features)


def test_client_needs_stores():
    with pytest.raises(ValueError, match="one store per part"):
        StoreClient([])
