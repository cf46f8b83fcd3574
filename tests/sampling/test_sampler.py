"""NeighborSampler: hand-checkable graphs, invariants of every batch, determinism, uniformity, bad input; both kernels (torch, native)."""
from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch

from gnndist.aggregation.native_kernel import native_status
from gnndist.graph import Graph
from gnndist.sampling import NeighborSampler, SampledBatch

KERNELS = ["torch", pytest.param("native", marks=pytest.mark.skipif(not native_status()[0], reason="no C compiler"))]


def ring(n: int = 8) -> Graph:
    src = torch.arange(n)
    return Graph.from_edge_index(torch.stack([src, (src + 1) % n]), n).to_undirected()


def star(leaves: int = 6) -> Graph:
    """Node 0 linked both ways with nodes 1..leaves."""
    leaf = torch.arange(1, leaves + 1)
    return Graph.from_edge_index(torch.stack([leaf, torch.zeros_like(leaf)]), leaves + 1).to_undirected()


def with_isolated() -> Graph:
    """A triangle 0-1-2 and isolated nodes 3, 4, 5."""
    return Graph.from_edge_index(torch.tensor([[0, 1, 2], [1, 2, 0]]), 6).to_undirected()


def complete_bipartite(sources: int, targets: int) -> Graph:
    """Every target node (ids sources..sources+targets-1) has the same in-neighbours 0..sources-1."""
    pairs = torch.cartesian_prod(torch.arange(sources), torch.arange(sources, sources + targets)).t()
    return Graph.from_edge_index(pairs, sources + targets)


def random_graph(num_nodes: int = 300, num_edges: int = 3000, seed: int = 0) -> Graph:
    """A seeded graph with a few hubs (power-law-ish sources), duplicates removed."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.rand(num_nodes, generator=generator).pow(-1.5)
    src = torch.multinomial(weight, num_edges, replacement=True, generator=generator)
    dst = torch.multinomial(weight, num_edges, replacement=True, generator=generator)
    keep = src != dst
    return Graph.from_edge_index(torch.stack([src[keep], dst[keep]]), num_nodes).to_undirected()


def edge_set(graph: Graph) -> set[tuple[int, int]]:
    return set(map(tuple, graph.edge_index().t().tolist()))


def global_edges(batch: SampledBatch, layer: int) -> list[tuple[int, int]]:
    """(src, dst) global ids of every edge of ``batch.blocks[layer]``."""
    block = batch.blocks[layer]
    src = batch.input_nodes[block.indices]
    dst = batch.input_nodes[block.dst()]
    return list(zip(src.tolist(), dst.tolist()))


def check_batch(graph: Graph, batch: SampledBatch, fanouts: list[int], replace: bool) -> None:
    """Every structural promise of a SampledBatch."""
    num_seeds = batch.seeds.numel()
    assert batch.num_layers == len(fanouts)
    assert torch.equal(batch.input_nodes[:num_seeds], batch.seeds)
    assert batch.input_nodes.unique().numel() == batch.input_nodes.numel()
    assert batch.blocks[0].num_src == batch.input_nodes.numel()
    assert batch.blocks[-1].num_dst == num_seeds
    for outer, inner in zip(batch.blocks[:-1], batch.blocks[1:]):
        assert outer.num_dst == inner.num_src
    edges = edge_set(graph)
    degree = graph.in_degrees()
    for layer, block in enumerate(batch.blocks):
        fanout = fanouts[len(fanouts) - 1 - layer]  # blocks run outermost hop first
        assert block.indptr.dtype == block.indices.dtype == torch.long
        assert block.num_src >= block.num_dst
        assert int(block.indptr[-1]) == block.num_edges
        if block.num_edges:
            assert 0 <= int(block.indices.min()) and int(block.indices.max()) < block.num_src
        assert set(global_edges(batch, layer)) <= edges
        dst_degree = degree[batch.input_nodes[: block.num_dst]]
        if fanout == -1:
            expected = dst_degree
        elif replace:
            expected = (dst_degree > 0).long() * fanout
        else:
            expected = dst_degree.clamp(max=fanout)
        assert torch.equal(block.in_degree(), expected)
        if not replace:
            for row in range(block.num_dst):
                picked = block.indices[block.indptr[row] : block.indptr[row + 1]]
                assert picked.unique().numel() == picked.numel()


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanouts", [[1], [2, 3], [3, -1], [-1, -1], [5, 5, 5]])
@pytest.mark.parametrize("kernel", KERNELS)
def test_batches_keep_every_invariant(replace, fanouts, kernel):
    graph = random_graph()
    sampler = NeighborSampler.from_graph(graph, fanouts, replace=replace, seed=3, kernel=kernel)
    for seeds in (torch.tensor([0]), torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(1))[:40]):
        check_batch(graph, sampler.sample(seeds), fanouts, replace)


@pytest.mark.parametrize("kernel", KERNELS)
def test_named_graphs_keep_every_invariant(named_graph, kernel):
    sampler = NeighborSampler.from_graph(named_graph, [2, 2], seed=0, kernel=kernel)
    seeds = torch.arange(0, named_graph.num_nodes, 2)
    check_batch(named_graph, sampler.sample(seeds), [2, 2], False)


@pytest.mark.parametrize("kernel", KERNELS)
def test_ring_picks_one_of_the_two_neighbours(kernel):
    graph = ring(8)
    batch = NeighborSampler.from_graph(graph, [1], seed=0, kernel=kernel).sample(torch.tensor([0, 4]))
    (src0, dst0), (src4, dst4) = global_edges(batch, 0)
    assert (dst0, dst4) == (0, 4)
    assert src0 in (1, 7) and src4 in (3, 5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_ring_two_hops_with_all_neighbours(kernel):
    batch = NeighborSampler.from_graph(ring(8), [-1, -1], seed=0, kernel=kernel).sample(torch.tensor([0]))
    assert batch.input_nodes.tolist() == [0, 1, 7, 2, 6]
    assert sorted(global_edges(batch, 1)) == [(1, 0), (7, 0)]
    assert sorted(global_edges(batch, 0)) == [(0, 1), (0, 7), (1, 0), (2, 1), (6, 7), (7, 0)]


@pytest.mark.parametrize("kernel", KERNELS)
def test_star_centre_gets_distinct_leaves_and_leaves_get_the_centre(kernel):
    graph = star(6)
    batch = NeighborSampler.from_graph(graph, [3], seed=0, kernel=kernel).sample(torch.tensor([0, 2]))
    edges = global_edges(batch, 0)
    centre = [src for src, dst in edges if dst == 0]
    assert len(centre) == len(set(centre)) == 3 and set(centre) <= set(range(1, 7))
    assert [src for src, dst in edges if dst == 2] == [0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_isolated_seeds_get_no_edges(kernel):
    graph = with_isolated()
    batch = NeighborSampler.from_graph(graph, [2, 2], seed=0, kernel=kernel).sample(torch.tensor([3, 4, 5]))
    assert batch.input_nodes.tolist() == [3, 4, 5]
    for block in batch.blocks:
        assert (block.num_dst, block.num_src, block.num_edges) == (3, 3, 0)
    batch = NeighborSampler.from_graph(graph, [2], replace=True, seed=0, kernel=kernel).sample(torch.tensor([5, 0]))
    assert batch.blocks[0].in_degree().tolist() == [0, 2]


@pytest.mark.parametrize("fanout", [-1, 4, 100])
@pytest.mark.parametrize("kernel", KERNELS)
def test_fanout_at_least_degree_takes_all_in_csr_order(fanout, kernel):
    graph = random_graph()
    seeds = torch.arange(0, graph.num_nodes, 3)
    if fanout != -1:
        seeds = seeds[graph.in_degrees()[seeds] <= fanout]
    batch = NeighborSampler.from_graph(graph, [fanout], seed=0, kernel=kernel).sample(seeds)
    taken = batch.input_nodes[batch.blocks[0].indices]
    expected = torch.cat([graph.indices[graph.indptr[v] : graph.indptr[v + 1]] for v in seeds.tolist()])
    assert torch.equal(taken, expected)


@pytest.mark.parametrize("kernel", KERNELS)
def test_with_replacement_picks_exactly_fanout_per_row(kernel):
    graph = star(3)
    batch = NeighborSampler.from_graph(graph, [7], replace=True, seed=0, kernel=kernel).sample(torch.tensor([0, 1]))
    assert batch.blocks[0].in_degree().tolist() == [7, 7]
    assert set(global_edges(batch, 0)) <= edge_set(graph)


@pytest.mark.parametrize("kernel", KERNELS)
def test_high_degree_rows_get_distinct_picks_in_range(kernel):
    graph = complete_bipartite(5000, 3)
    batch = NeighborSampler.from_graph(graph, [10], seed=0, kernel=kernel).sample(torch.tensor([5000, 5001, 5002]))
    block = batch.blocks[0]
    assert block.in_degree().tolist() == [10, 10, 10]
    for row in range(3):
        picked = batch.input_nodes[block.indices[10 * row : 10 * (row + 1)]]
        assert picked.unique().numel() == 10 and int(picked.max()) < 5000


@pytest.mark.parametrize("kernel", KERNELS)
def test_without_replacement_is_uniform_over_neighbours_and_pairs(kernel):
    """A degree-20 node, fanout 5, 4000 draws: every neighbour ~1000 times, every pair ~C(18,3)/C(20,5) of draws."""
    degree, fanout, targets, rounds = 20, 5, 1000, 4
    graph = complete_bipartite(degree, targets)
    sampler = NeighborSampler.from_graph(graph, [fanout], seed=0, kernel=kernel)
    seeds = torch.arange(degree, degree + targets)
    picks = []
    for _ in range(rounds):
        batch = sampler.sample(seeds)
        picks.append(batch.input_nodes[batch.blocks[0].indices].view(targets, fanout))
    picks = torch.cat(picks)
    draws = picks.size(0)
    counts = torch.bincount(picks.flatten(), minlength=degree).float()
    expected = draws * fanout / degree
    assert ((counts - expected).abs() / expected).max() < 0.12
    pair_counts = torch.zeros(degree, degree)
    for a, b in itertools.combinations(range(fanout), 2):
        low, high = torch.minimum(picks[:, a], picks[:, b]), torch.maximum(picks[:, a], picks[:, b])
        pair_counts.index_put_((low, high), torch.ones(draws), accumulate=True)
    pairs = pair_counts[torch.triu_indices(degree, degree, 1).unbind()]
    expected_pair = draws * (fanout * (fanout - 1)) / (degree * (degree - 1))
    assert ((pairs - expected_pair).abs() / expected_pair).max() < 0.45


@pytest.mark.parametrize("kernel", KERNELS)
def test_with_replacement_is_uniform_over_neighbours(kernel):
    graph = complete_bipartite(20, 500)
    batch = NeighborSampler.from_graph(graph, [8], replace=True, seed=1, kernel=kernel).sample(torch.arange(20, 520))
    counts = torch.bincount(batch.input_nodes[batch.blocks[0].indices], minlength=20).float()
    assert ((counts - 200).abs() / 200).max() < 0.3


@pytest.mark.parametrize("kernel", KERNELS)
def test_same_seed_same_batches_and_set_epoch_restarts_the_stream(kernel):
    graph = random_graph()
    seeds = torch.arange(0, 60, 2)

    def run(sampler):
        return [sampler.sample(seeds) for _ in range(3)]

    first, second = (run(NeighborSampler.from_graph(graph, [4, 3], seed=7, kernel=kernel)) for _ in range(2))
    for a, b in zip(first, second):
        assert torch.equal(a.input_nodes, b.input_nodes)
        for block_a, block_b in zip(a.blocks, b.blocks):
            assert torch.equal(block_a.indptr, block_b.indptr) and torch.equal(block_a.indices, block_b.indices)
    assert not torch.equal(first[0].input_nodes, first[1].input_nodes)
    other = NeighborSampler.from_graph(graph, [4, 3], seed=8, kernel=kernel).sample(seeds)
    assert not torch.equal(other.input_nodes, first[0].input_nodes)
    sampler = NeighborSampler.from_graph(graph, [4, 3], seed=7, kernel=kernel)
    sampler.set_epoch(2)
    again = sampler.sample(seeds)
    sampler.sample(seeds)
    sampler.set_epoch(2)
    assert torch.equal(sampler.sample(seeds).input_nodes, again.input_nodes)


SAMPLE_AND_HASH = """
import hashlib
import torch
from gnndist.graph import Graph
from gnndist.sampling import NeighborSampler
edges = torch.randint(0, 500, (2, 5000), generator=torch.Generator().manual_seed(0))
graph = Graph.from_edge_index(edges[:, edges[0] != edges[1]], 500)
batch = NeighborSampler.from_graph(graph, [5, 4], seed=11).sample(torch.arange(0, 500, 5))
parts = [batch.input_nodes] + [t for block in batch.blocks for t in (block.indptr, block.indices)]
digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in parts)).hexdigest()
"""


def test_same_batches_in_another_process():
    here = {}
    exec(SAMPLE_AND_HASH, here)
    there = subprocess.run([sys.executable, "-c", SAMPLE_AND_HASH + "print(digest)"], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here["digest"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_src_degree_and_edge_weight_follow_the_sample(kernel):
    graph = random_graph()
    graph = graph.with_(edge_weight=torch.arange(graph.num_edges, dtype=torch.float32))
    weight_of = {edge: w for edge, w in zip(map(tuple, graph.edge_index().t().tolist()), graph.edge_weight.tolist())}
    batch = NeighborSampler.from_graph(graph, [3, 2], seed=0, kernel=kernel).sample(torch.arange(10))
    for layer, block in enumerate(batch.blocks):
        assert torch.equal(block.src_degree, graph.in_degrees()[batch.input_nodes[: block.num_src]])
        assert block.edge_weight.tolist() == [weight_of[edge] for edge in global_edges(batch, layer)]
    plain = NeighborSampler(graph.indptr, graph.indices, [3, 2], seed=0, kernel=kernel).sample(torch.arange(10))
    assert all(block.src_degree is None and block.edge_weight is None for block in plain.blocks)


@pytest.mark.parametrize("kernel", KERNELS)
def test_full_neighbourhood_blocks_reproduce_full_graph_sage(kernel):
    """PyG layers consume the blocks directly; with fanout -1 the seeds' outputs equal full-graph ones."""
    from torch_geometric.nn import SAGEConv

    torch.manual_seed(0)
    graph = random_graph()
    x = torch.randn(graph.num_nodes, 8)
    convs = [SAGEConv(8, 16), SAGEConv(16, 4)]
    full = x
    for conv in convs:
        full = conv(full, graph.edge_index())
    seeds = torch.tensor([5, 17, 3, 250])
    batch = NeighborSampler.from_graph(graph, [-1, -1], seed=0, kernel=kernel).sample(seeds)
    h = x[batch.input_nodes]
    for conv, block in zip(convs, batch.blocks):
        h = conv((h, h[: block.num_dst]), block.edge_index(), size=(block.num_src, block.num_dst))
    torch.testing.assert_close(h, full[seeds])


def test_to_moves_every_tensor():
    batch = NeighborSampler.from_graph(ring(), [2], seed=0).sample(torch.tensor([1]))
    moved = batch.to("cpu")
    assert torch.equal(moved.input_nodes, batch.input_nodes) and moved.blocks[0].num_src == batch.blocks[0].num_src


@pytest.mark.parametrize("fanouts", [[], [0], [5, 0], [-2], [3, -5]])
def test_bad_fanouts_name_the_value(fanouts):
    with pytest.raises(ValueError, match=r"fanout"):
        NeighborSampler.from_graph(ring(), fanouts)


@pytest.mark.parametrize("fanouts", ["10", 5, [2.5], [True]])
def test_fanouts_of_the_wrong_type(fanouts):
    with pytest.raises(TypeError, match="fanout"):
        NeighborSampler.from_graph(ring(), fanouts)


@pytest.mark.parametrize("kernel", KERNELS)
def test_bad_seeds_leave_the_sampler_usable(kernel):
    graph = ring(8)
    sampler = NeighborSampler.from_graph(graph, [2], seed=0, kernel=kernel)
    with pytest.raises(ValueError, match="got 8"):
        sampler.sample(torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="got -1"):
        sampler.sample(torch.tensor([-1]))
    with pytest.raises(ValueError, match="empty"):
        sampler.sample(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="distinct"):
        sampler.sample(torch.tensor([3, 1, 3]))
    with pytest.raises(TypeError, match="seeds"):
        sampler.sample(torch.tensor([0.0, 1.0]))
    check_batch(graph, sampler.sample(torch.tensor([3, 1])), [2], False)
    assert bool((sampler._local_id == torch.iinfo(torch.int32).max).all())


def test_bad_structure_and_options():
    graph = ring()
    with pytest.raises(ValueError, match="indptr"):
        NeighborSampler(graph.indptr[:-1], graph.indices, [2])
    with pytest.raises(TypeError, match="indices"):
        NeighborSampler(graph.indptr, graph.indices.float(), [2])
    with pytest.raises(ValueError, match="src_degree"):
        NeighborSampler(graph.indptr, graph.indices, [2], src_degree=torch.ones(3))



@pytest.mark.skipif(not native_status()[0], reason="no C compiler")
def test_auto_kernel_is_native_on_the_cpu_and_torch_with_edge_types():
    graph = random_graph()
    assert NeighborSampler.from_graph(graph, [3]).kernel == "native"
    assert NeighborSampler.from_graph(graph, [3], kernel="torch").kernel == "torch"
    edge_type = torch.arange(graph.num_edges) % 2
    assert NeighborSampler(graph.indptr, graph.indices, [3], edge_type=edge_type).kernel == "torch"
    with pytest.raises(ValueError, match="edge types"):
        NeighborSampler(graph.indptr, graph.indices, [3], edge_type=edge_type, kernel="native")
    with pytest.raises(ValueError, match="'kernel'.*'fast'"):
        NeighborSampler.from_graph(graph, [3], kernel="fast")


@pytest.mark.parametrize("kernel", KERNELS)
def test_strided_seeds_and_structure_sample_as_contiguous_ones(kernel):
    graph = random_graph()
    wide = torch.stack([graph.indptr, graph.indptr], 1)[:, 0]  # a strided view of indptr
    sampler = NeighborSampler(wide, graph.indices, [4, 3], seed=5, kernel=kernel)
    seeds = torch.arange(0, 120)[::3]
    batch = sampler.sample(seeds)
    check_batch(graph, batch, [4, 3], False)
    again = NeighborSampler(graph.indptr, graph.indices, [4, 3], seed=5, kernel=kernel).sample(seeds.clone())
    assert torch.equal(batch.input_nodes, again.input_nodes)

@pytest.mark.gpu
def test_cuda_batches_keep_every_invariant():
    graph = random_graph()
    for replace in (False, True):
        sampler = NeighborSampler.from_graph(graph, [4, 3], replace=replace, seed=0, device="cuda")
        batch = sampler.sample(torch.arange(0, 100, 3, device="cuda"))
        assert batch.input_nodes.is_cuda and all(block.indices.is_cuda for block in batch.blocks)
        check_batch(graph, batch.to("cpu"), [4, 3], replace)
        again = NeighborSampler.from_graph(graph, [4, 3], replace=replace, seed=0, device="cuda").sample(torch.arange(0, 100, 3, device="cuda"))
        assert torch.equal(again.input_nodes, batch.input_nodes)


def test_num_threads_is_restored_after_sampling():
    previous = torch.get_num_threads()
    sampler = NeighborSampler.from_graph(ring(), [2], seed=0, num_threads=1)
    sampler.sample(torch.tensor([0]))
    assert torch.get_num_threads() == previous
    with pytest.raises(ValueError, match="num_threads"):
        NeighborSampler.from_graph(ring(), [2], num_threads=0)
