"""Typed sampling: up to a fanout per destination and relation (all in-neighbours of a relation when its degree
is within the fanout), sampled edges exist with their relation, batches split into HeteroBlocks, fanout keys checked."""
import pytest
import torch

from gnndist.data import load_dataset
from gnndist.hetero import edge_type_name
from gnndist.sampling import NeighborSampler
from gnndist.sampling.hetero import relation_fanouts, split_batch

SMALL_HSBM = dict(num_papers=300, num_authors=150, num_institutions=16, num_fields=32, seed=0)


@pytest.fixture(scope="module")
def graph():
    return load_dataset("hsbm", **SMALL_HSBM)


@pytest.fixture(scope="module")
def view(graph):
    return graph.to_homogeneous()


def typed_sampler(view, fanouts, seed=0):
    return NeighborSampler(view.graph.indptr, view.graph.indices, fanouts, edge_type=view.edge_type, num_edge_types=len(view.edge_types), seed=seed)


def relation_edge_keys(view):
    """Every edge of the view as one integer ``(src * N + dst) * R + relation``."""
    n, r = view.graph.num_nodes, len(view.edge_types)
    src, dst = view.graph.edge_index()
    return (src * n + dst) * r + view.edge_type


@pytest.mark.parametrize("fanouts", [[2, 3], [(1, 3, 2, 1, 2, 4, 1, 1), (2, 1, 1, 3, 1, 1, 2, 2)]], ids=["per-hop", "per-relation"])
def test_seeds_get_at_most_fanout_per_relation_and_all_when_degree_is_small(view, fanouts):
    num_types, n = len(view.edge_types), view.graph.num_nodes
    seeds = torch.arange(40) + view.offsets["paper"]
    batch = typed_sampler(view, fanouts).sample(seeds)
    dst_of_edge = view.graph.edge_index()[1]
    degree = torch.bincount(dst_of_edge * num_types + view.edge_type, minlength=n * num_types).view(n, num_types)  # per (node, relation)
    for block, types, fanout in zip(batch.blocks, batch.edge_types, reversed(fanouts)):
        per_type = torch.tensor(fanout if isinstance(fanout, tuple) else (fanout,) * num_types)
        dst = torch.repeat_interleave(torch.arange(block.num_dst), block.indptr.diff())
        picked = torch.bincount(dst * num_types + types, minlength=block.num_dst * num_types).view(block.num_dst, num_types)
        expected = torch.minimum(degree[batch.input_nodes[: block.num_dst]], per_type)
        assert torch.equal(picked, expected)  # at most the fanout per relation; every in-neighbour when the degree is within it
        keys = (batch.input_nodes[block.indices] * n + batch.input_nodes[dst]) * num_types + types
        assert bool(torch.isin(keys, relation_edge_keys(view)).all())  # every sampled edge exists, with its relation


def test_typed_sampling_is_deterministic_for_a_seed(view):
    seeds = torch.arange(0, 60, 3) + view.offsets["paper"]
    first, second = typed_sampler(view, [3, 2], seed=7), typed_sampler(view, [3, 2], seed=7)
    for epoch in (0, 1):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        a, b = first.sample(seeds), second.sample(seeds)
        assert torch.equal(a.input_nodes, b.input_nodes)
        assert all(torch.equal(x.indices, y.indices) and torch.equal(s, t) for x, y, s, t in zip(a.blocks, b.blocks, a.edge_types, b.edge_types))
    other = typed_sampler(view, [3, 2], seed=8)
    other.set_epoch(1)
    assert not torch.equal(other.sample(seeds).input_nodes, a.input_nodes)


def test_split_batch_types_every_edge_of_its_relation(graph, view):
    seeds = torch.arange(25) + view.offsets["paper"]
    batch = typed_sampler(view, [3, 2]).sample(seeds)
    node_type = torch.bucketize(batch.input_nodes, torch.tensor(list(view.offsets.values())[1:]), right=True)
    typed = split_batch(batch, node_type, view.node_types, view.edge_types)
    assert [block.num_dst["paper"] for block in typed.blocks][-1] == seeds.numel()
    for layer, (block, hetero_block) in enumerate(zip(batch.blocks, typed.blocks)):
        assert sum(b.num_edges for b in hetero_block.blocks.values()) == block.num_edges
        if layer:  # a layer's input rows of a type are the previous layer's output rows of that type
            assert hetero_block.num_dst == {t: int((node_type[: block.num_dst] == i).sum()) for i, t in enumerate(view.node_types)}
        for (src_type, relation, dst_type), relation_block in hetero_block.blocks.items():
            dst = torch.repeat_interleave(torch.arange(relation_block.num_dst), relation_block.indptr.diff())
            src_ids = batch.input_nodes[typed.rows[src_type][relation_block.indices]] - view.offsets[src_type]
            dst_ids = batch.input_nodes[typed.rows[dst_type][dst]] - view.offsets[dst_type]
            edges = graph.edge_index((src_type, relation, dst_type))
            num = graph.nodes[src_type].num_nodes
            assert bool(torch.isin(dst_ids * num + src_ids, edges[1] * num + edges[0]).all())


def test_relation_fanouts_resolve_names_and_refuse_bad_keys(view):
    names = [edge_type_name(e) for e in view.edge_types]
    assert relation_fanouts([4, 2], view.edge_types, 2) == [(4,) * 8, (2,) * 8]
    mapping = {name: [i + 1, 1] for i, name in enumerate(names)}
    assert relation_fanouts(mapping, view.edge_types, 2) == [tuple(range(1, 9)), (1,) * 8]
    with pytest.raises(ValueError, match=r"unknown relation\(s\) \['paper__likes__paper'\].*author__writes__paper"):
        relation_fanouts({**mapping, "paper__likes__paper": [1, 1]}, view.edge_types, 2)
    with pytest.raises(ValueError, match=r"lacks relation\(s\) \['author__writes__paper'\]"):
        relation_fanouts({name: hops for name, hops in mapping.items() if name != "author__writes__paper"}, view.edge_types, 2)
    with pytest.raises(ValueError, match="one fanout per layer"):
        relation_fanouts({**mapping, names[0]: [1, 2, 3]}, view.edge_types, 2)
    with pytest.raises(ValueError, match=r"one per type \(8\) \(got \(1, 2\)"):
        typed_sampler(view, [(1, 2), 2])
