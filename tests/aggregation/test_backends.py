"""Every registered aggregation backend equals the reference, forward and backward, for sum, mean and max."""
from __future__ import annotations

import pytest
import torch

from gnndist.aggregation import REDUCERS, available_aggregations, check_against_reference, reference_with_grad, resolve_aggregation, tie_free_features
from gnndist.block import Block
from gnndist.graph import Graph


def weighted_random(num_nodes: int = 40, num_edges: int = 200, seed: int = 0) -> Block:
    """A weighted directed graph without duplicate edges, with some isolated destinations."""
    generator = torch.Generator().manual_seed(seed)
    key = torch.unique(torch.randint(num_nodes - 5, (num_edges,), generator=generator) * num_nodes + torch.randint(num_nodes, (num_edges,), generator=generator))
    graph = Graph.from_edge_index(torch.stack([key % num_nodes, key // num_nodes]), num_nodes, edge_weight=torch.rand(key.numel(), generator=generator) + 0.1)
    return Block.from_graph(graph)


def bipartite_block(weighted: bool) -> Block:
    """12 destinations pull from 30 sources (destinations are the first sources); destinations 3 and 7 have no in-edges."""
    generator = torch.Generator().manual_seed(1)
    dst = torch.randint(12, (90,), generator=generator)
    dst = dst[(dst != 3) & (dst != 7)]
    src = torch.randint(30, (dst.numel(),), generator=generator)
    key = torch.unique(dst * 30 + src)
    dst, src = key // 30, key % 30
    indptr = torch.zeros(13, dtype=torch.long)
    torch.cumsum(torch.bincount(dst, minlength=12), 0, out=indptr[1:])
    weight = torch.rand(src.numel(), generator=generator) + 0.1 if weighted else None
    return Block(indptr, src, 30, edge_weight=weight)


def multigraph_block(weighted: bool) -> Block:
    """Repeated edges (each edge twice, some three times), repeats sharing their weight: max must count a repeat once."""
    generator = torch.Generator().manual_seed(2)
    src, dst = torch.randint(20, (60,), generator=generator), torch.randint(15, (60,), generator=generator)
    weight = torch.rand(60, generator=generator) + 0.1
    edges = torch.cat([torch.stack([src, dst]), torch.stack([src, dst]), torch.stack([src[:10], dst[:10]])], dim=1)
    weights = torch.cat([weight, weight, weight[:10]]) if weighted else None
    return Block.from_graph(Graph.from_edge_index(edges, 20, edge_weight=weights))


def two_cliques_block() -> Block:
    nodes = torch.arange(5)
    pairs = torch.cartesian_prod(nodes, nodes)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    edges = torch.cat([pairs, pairs + 5, torch.tensor([[0, 5], [5, 0]])]).t()
    return Block.from_graph(Graph.from_edge_index(edges, 10))


BLOCKS = {
    "weighted_random": weighted_random,
    "bipartite_block": lambda: bipartite_block(weighted=False),
    "bipartite_block_weighted": lambda: bipartite_block(weighted=True),
    "gcn_two_cliques": lambda: two_cliques_block().gcn_normalized(),
    "multigraph": lambda: multigraph_block(weighted=False),
    "multigraph_weighted": lambda: multigraph_block(weighted=True),
}

BACKENDS = [pytest.param(name, marks=pytest.mark.dgl) if name == "dgl_gspmm" else name for name in available_aggregations()]


def skip_if_unavailable(backend) -> None:
    reason = backend.available()
    if reason is not None:
        pytest.skip(reason)


def assert_matches_reference(name: str, reduce: str, block: Block) -> None:
    backend = resolve_aggregation(name)
    skip_if_unavailable(backend)
    reason = backend.supports(block, reduce)
    if reason is not None:
        assert reduce in reason and reduce not in backend.reducers, reason  # the only refusal these small blocks may get
        return
    x = tie_free_features(block.num_src, 5, torch.Generator().manual_seed(0))
    state = backend.prepare(block, reduce)
    agreement = check_against_reference(lambda features: backend.run(state, features), block, x, reduce)  # noqa: B023 (called in this iteration)
    assert agreement.ok, agreement.describe()


@pytest.mark.parametrize("block_name", sorted(BLOCKS))
@pytest.mark.parametrize("reduce", REDUCERS)
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_reference(name, reduce, block_name):
    assert_matches_reference(name, reduce, BLOCKS[block_name]())


@pytest.mark.parametrize("reduce", REDUCERS)
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_reference_on_named_graphs(name, reduce, named_graph):
    """The shared tiny graphs: ring, two cliques, isolated nodes, bipartite."""
    assert_matches_reference(name, reduce, Block.from_graph(named_graph))


@pytest.mark.parametrize("name", BACKENDS)
def test_call_caches_prepared_state_and_backward_reaches_x(name):
    backend = resolve_aggregation(name)
    skip_if_unavailable(backend)
    block = weighted_random()
    x = torch.randn(block.num_src, 8, requires_grad=True)
    first = backend(block, x, "sum")
    second = backend(block, x, "sum")
    assert torch.equal(first, second)
    assert ("aggregation", name, "sum") in block._cache
    second.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("width", [1, 3, 8, 17, 64, 130])
@pytest.mark.parametrize("reduce", REDUCERS)
def test_native_kernel_widths_and_threads(width, reduce):
    """Every width path of the C kernel (vector chunks and scalar tail), with one thread and with two."""
    backend = resolve_aggregation("gnndist_csr")
    skip_if_unavailable(backend)
    block = weighted_random(num_nodes=300, num_edges=6000, seed=width)
    x = tie_free_features(block.num_src, width, torch.Generator().manual_seed(width))
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            state = backend.prepare(block, reduce)
            agreement = check_against_reference(lambda features: backend.run(state, features), block, x, reduce)  # noqa: B023 (called in this iteration)
            assert agreement.ok, f"{count} threads: {agreement.describe()}"
    finally:
        torch.set_num_threads(threads)


def test_native_kernel_float64_and_bad_inputs():
    backend = resolve_aggregation("gnndist_csr")
    skip_if_unavailable(backend)
    block = weighted_random()
    state = backend.prepare(block, "mean")
    x = torch.randn(block.num_src, 6, dtype=torch.float64)
    agreement = check_against_reference(lambda features: backend.run(state, features), block, x, "mean")
    assert agreement.ok and agreement.tolerance <= 1e-10, agreement.describe()
    with pytest.raises(TypeError, match="float16"):
        backend.run(state, x.to(torch.float16))
    with pytest.raises(ValueError, match=r"Expected x of shape \[40, F\]"):
        backend.run(state, torch.randn(7, 6))


def test_supports_names_the_reason():
    block = Block.from_graph(Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 9000))
    assert "dense 9000x9000" in resolve_aggregation("dense_gemm").supports(block, "sum")
    assert "max" in resolve_aggregation("csc_spmm").supports(block, "max")
    for name in ("dgl_gspmm", "torch_sparse_spmm"):
        backend = resolve_aggregation(name)
        if backend.available() is not None:
            assert "does not load here" in backend.supports(block, "sum")


def test_unknown_backend_lists_choices():
    with pytest.raises(KeyError, match="available: .*csr_spmm.*gnndist_csr"):
        resolve_aggregation("nope")


def test_every_backend_carries_taxonomy_labels():
    for name in available_aggregations():
        backend = resolve_aggregation(name)
        assert backend.name == name and set(backend.reducers) <= set(REDUCERS)
        if backend.selector:
            continue
        assert backend.data_organization in ("coo", "csr", "csc", "dense")
        assert backend.propagation in ("push", "pull", "gemm")


def test_auto_delegates_to_the_selected_backend():
    from gnndist.aggregation import select_backend

    block = weighted_random()
    state = resolve_aggregation("auto").prepare(block, "mean")
    assert state[0].name == select_backend(block, "mean")


@pytest.mark.gpu
@pytest.mark.parametrize("block_name", ["weighted_random", "bipartite_block", "multigraph", "gcn_two_cliques"])
@pytest.mark.parametrize("reduce", REDUCERS)
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_reference_on_cuda(name, reduce, block_name):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    backend = resolve_aggregation(name)
    skip_if_unavailable(backend)
    block = BLOCKS[block_name]().to("cuda")
    reason = backend.supports(block, reduce)
    if reason is not None:
        assert reduce in reason or "cpu" in reason.lower(), reason
        return
    x = tie_free_features(block.num_src, 5, torch.Generator().manual_seed(0)).cuda()
    state = backend.prepare(block, reduce)
    agreement = check_against_reference(lambda features: backend.run(state, features), block, x, reduce)  # noqa: B023 (called in this iteration)
    assert agreement.ok, agreement.describe()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_native_backward_scatters_first_then_pulls_over_the_transposed_copy(reduce, weighted):
    """On one thread a block's first backward scatters along the forward's CSR (no transposed copy is built);
    its second builds the copy and pulls: both give the reference's gradient, and (unweighted) the same bits."""
    backend = resolve_aggregation("gnndist_csr")
    skip_if_unavailable(backend)
    block = bipartite_block(weighted)
    x = tie_free_features(block.num_src, 19, torch.Generator().manual_seed(3))
    grad = torch.randn(block.num_dst, 19, generator=torch.Generator().manual_seed(4))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        state = backend.prepare(block, reduce)
        grads = []
        for _ in range(2):
            leaf = x.clone().requires_grad_(True)
            backend.run(state, leaf).backward(grad)
            grads.append(leaf.grad)
            if len(grads) == 1:
                assert ("transposed", torch.float32) not in state._by_dtype
        assert ("transposed", torch.float32) in state._by_dtype and state.backwards == 2
    finally:
        torch.set_num_threads(threads)
    _, expected = reference_with_grad(block, x, reduce, grad)
    for got in grads:
        torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-6)
    if weighted:  # weight x 1/in-degree rounds differently (float64 then dtype for the copy): an ulp apart
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)
    else:  # the same additions in the same order
        assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("width, copied_first", [(16, False), (130, True)])
def test_native_first_backward_on_two_threads_scatters_only_narrow_gradients(width, copied_first):
    """With two threads a first backward scatters when at most SCATTER_WIDTH wide, else builds the copy and pulls."""
    from gnndist.aggregation.native_csr import SCATTER_WIDTH

    backend = resolve_aggregation("gnndist_csr")
    skip_if_unavailable(backend)
    assert (width > SCATTER_WIDTH) == copied_first
    block = weighted_random(num_nodes=300, num_edges=6000, seed=5)  # edges x width above SMALL_WORK: two threads
    x = tie_free_features(block.num_src, width, torch.Generator().manual_seed(5))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        state = backend.prepare(block, "mean")
        agreement = check_against_reference(lambda features: backend.run(state, features), block, x, "mean")
    finally:
        torch.set_num_threads(threads)
    assert agreement.ok, agreement.describe()
    assert state.backwards == 1 and (("transposed", torch.float32) in state._by_dtype) == copied_first
