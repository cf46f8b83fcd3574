"""Static caches on a power-law graph: with 20 % of the remote nodes cached, degree and presample serve
most remote rows (presample at least as many as degree), and remote bytes drop by the hit rate."""
from __future__ import annotations

import pytest
import torch

from gnndist.data import load_dataset
from gnndist.partition import PartitionBook, build_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.store import local_stores
from gnndist.train.minibatch import PartBatches

POLICIES = ("none", "degree", "presample", "lru")


@pytest.fixture(scope="module")
def rmat_parts():
    graph = load_dataset("rmat", scale=13, edge_factor=16, feature_dim=8, num_classes=4, seed=0)
    result = resolve_partitioner("metis").partition(graph, 4, seed=0)
    parts = build_parts(graph, result)
    return graph, parts, local_stores(parts), PartitionBook.from_assignment(result.node_part, 4)


@pytest.fixture(scope="module")
def traffic(rmat_parts):
    """Hits, misses and remote bytes of two training epochs on every part, per policy."""
    graph, parts, stores, book = rmat_parts
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    results = {}
    try:
        for policy in POLICIES:
            hits = misses = remote_bytes = 0
            for part in parts:
                data = PartBatches(part, stores, book=book, fanouts=[10, 5], batch_size=128, seed=0, rank=part.part_id, cache=policy, cache_capacity=0.2)
                for epoch in range(2):
                    for seeds in data.batches(epoch):
                        prepared = data.prepare(seeds)
                        assert torch.equal(prepared.x, graph.x[data.local.global_ids[prepared.batch.input_nodes]])
                hits, misses, remote_bytes = hits + data.cache.stats.hits, misses + data.cache.stats.misses, remote_bytes + data.remote_bytes
            results[policy] = {"hit_rate": hits / (hits + misses), "remote_bytes": remote_bytes, "requests": hits + misses}
    finally:
        torch.set_num_threads(previous)
    print({policy: {k: round(v, 3) for k, v in r.items()} for policy, r in results.items()})
    return results


def test_every_policy_sees_the_same_requests(traffic):
    assert len({r["requests"] for r in traffic.values()}) == 1  # caches never change the batches


def test_static_caches_reach_60_percent_with_a_fifth_of_the_remote_nodes(traffic):
    assert traffic["none"]["hit_rate"] == 0
    assert traffic["degree"]["hit_rate"] >= 0.60
    assert traffic["presample"]["hit_rate"] >= 0.60
    assert traffic["presample"]["hit_rate"] >= traffic["degree"]["hit_rate"]
    assert 0 < traffic["lru"]["hit_rate"] < traffic["degree"]["hit_rate"]


@pytest.mark.parametrize("policy", POLICIES)
def test_remote_bytes_drop_by_the_hit_rate(traffic, policy):
    expected = traffic["none"]["remote_bytes"] * (1 - traffic[policy]["hit_rate"])
    assert traffic[policy]["remote_bytes"] == pytest.approx(expected, rel=1e-9)
