"""Graph: constructors agree, conversions round-trip, every bad input names its problem."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnndist.graph import Graph


def test_csr_is_over_incoming_edges():
    graph = Graph.from_edge_index(torch.tensor([[0, 0, 2, 1], [1, 2, 1, 0]]), 3)
    assert graph.indptr.tolist() == [0, 1, 3, 4]
    assert graph.indices.tolist() == [1, 0, 2, 0]  # in-neighbours of 0: {1}; of 1: {0, 2}; of 2: {0}
    assert graph.in_degrees().tolist() == [1, 2, 1]
    assert graph.out_degrees().tolist() == [2, 1, 1]


def test_constructors_agree(named_graph):
    pyg = Graph.from_pyg(named_graph.to_pyg())
    scipy_graph = Graph.from_scipy(named_graph.to_scipy(), **named_graph.node_data())
    for other in (pyg, scipy_graph):
        assert torch.equal(other.indptr, named_graph.indptr)
        assert torch.equal(other.indices, named_graph.indices)
        assert torch.equal(other.x, named_graph.x)
    assert pyg.fingerprint() == named_graph.fingerprint()


def test_to_undirected_dedupes_and_is_idempotent():
    graph = Graph.from_edge_index(torch.tensor([[0, 0, 1], [1, 1, 2]]), 3).to_undirected()
    assert sorted(map(tuple, graph.edge_index().t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    again = graph.to_undirected()
    assert torch.equal(again.indices, graph.indices) and torch.equal(again.indptr, graph.indptr)


def test_subgraph_renumbers_in_given_order(named_graph):
    nodes = torch.tensor([3, 0, 1])
    sub = named_graph.subgraph(nodes)
    assert sub.num_nodes == 3
    assert torch.equal(sub.x, named_graph.x[nodes])
    original = set(map(tuple, named_graph.edge_index().t().tolist()))
    for s, d in sub.edge_index().t().tolist():
        assert (int(nodes[s]), int(nodes[d])) in original
    expected = sum(1 for s, d in original if s in {3, 0, 1} and d in {3, 0, 1})
    assert sub.num_edges == expected


def test_scipy_weights_survive():
    matrix = sp.csr_matrix((np.array([2.0, 3.0]), (np.array([0, 1]), np.array([1, 2]))), shape=(3, 3))
    graph = Graph.from_scipy(matrix)
    assert graph.edge_weight.tolist() == [2.0, 3.0]
    assert graph.to_scipy().toarray().tolist() == matrix.toarray().tolist()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(edge_index=torch.tensor([[0, 5], [1, 0]]), num_nodes=3), ValueError, "must be < num_nodes=3 (got 5)"),
        (dict(edge_index=torch.tensor([[0, -1], [1, 0]]), num_nodes=3), ValueError, "must be >= 0 (got -1)"),
        (dict(edge_index=torch.tensor([[0.0, 1.0], [1.0, 0.0]]), num_nodes=2), TypeError, "integer node ids in 'edge_index'"),
        (dict(edge_index=torch.tensor([0, 1, 2]), num_nodes=3), ValueError, "shape [2, num_edges] (got (3,))"),
        (dict(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0), ValueError, "empty graph"),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, x=torch.ones(3, 4)), ValueError, "'x' of shape [2, F] (got (3, 4))"),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, x=torch.tensor([[1.0], [float("nan")]])), ValueError, "'x' has NaN or inf values (first at node 1)"),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, x=torch.tensor([[float("inf")], [0.0]])), ValueError, "NaN or inf"),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, y=torch.tensor([0, 1, 1])), ValueError, "'y' with 2 rows"),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, train_mask=torch.tensor([1, 0])), TypeError, "'train_mask' to be a bool tensor"),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, val_mask=torch.tensor([True])), ValueError, "'val_mask' of shape [2]"),
        (
            dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, train_mask=torch.tensor([True, False]), test_mask=torch.tensor([True, True])),
            ValueError,
            "'train_mask' and 'test_mask' overlap on 1 nodes (first: 0)",
        ),
        (dict(edge_index=torch.tensor([[0], [1]]), num_nodes=2, edge_weight=torch.ones(2)), ValueError, "'edge_weight' of shape [1]"),
    ],
)
def test_bad_input_names_the_problem(kwargs, error, message):
    with pytest.raises(error) as info:
        Graph.from_edge_index(**kwargs)
    assert message in str(info.value)


def test_bad_csr_and_subgraph():
    with pytest.raises(ValueError, match="must start at 0 and end at num_edges=2"):
        Graph(torch.tensor([0, 1, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="Edge source ids must be in \\[0, 1\\] \\(got 7\\)"):
        Graph(torch.tensor([0, 1, 2]), torch.tensor([0, 7]))
    graph = Graph.from_edge_index(torch.tensor([[0], [1]]), 2)
    with pytest.raises(ValueError, match="empty graph"):
        graph.subgraph(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="unique"):
        graph.subgraph(torch.tensor([1, 1]))
    with pytest.raises(TypeError, match="Unknown node data"):
        Graph.from_edge_index(torch.tensor([[0], [1]]), 2, features=torch.ones(2, 2))


@pytest.mark.dgl
def test_from_dgl_round_trip(named_graph):
    import dgl

    src, dst = named_graph.edge_index()
    dgl_graph = dgl.graph((src, dst), num_nodes=named_graph.num_nodes)
    dgl_graph.ndata["feat"] = named_graph.x
    dgl_graph.ndata["label"] = named_graph.y
    graph = Graph.from_dgl(dgl_graph)
    assert torch.equal(graph.indptr, named_graph.indptr) and torch.equal(graph.indices, named_graph.indices)
    assert torch.equal(graph.x, named_graph.x) and torch.equal(graph.y, named_graph.y)


# --- labels: checked against the splits and num_classes (issue 16, item 3) ----------------------------
EDGES = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])


def _masks(train, val=(), test=(), n=4):
    make = lambda ids: torch.isin(torch.arange(n), torch.tensor(list(ids), dtype=torch.long))  # noqa: E731
    return dict(train_mask=make(train), val_mask=make(val), test_mask=make(test))


@pytest.mark.parametrize(
    "y, masks, num_classes, message",
    [
        ([0, -1, 1, 1], _masks([0, 1], [2]), None, "Label 'y' of node 1 (in 'train_mask') is -1; expected [0, num_classes)"),
        ([0, 1, -5, 1], _masks([0, 1], [3]), None, "Label 'y' of node 2 (outside every split) is -5; expected [0, num_classes) or -1 (unlabeled)"),
        ([0, 1, 2, 3], _masks([0, 1], [2], [3]), 3, "Label 'y' of node 3 (in 'test_mask') is 3; expected [0, 3) (num_classes=3)"),
        ([0, 10_000, 2, 3], _masks([0, 1], [2], [3]), None, "the largest label, 10000 at node 1 (in 'train_mask'), would make a 10001-way output"),
        ([0.0, 1.5, 0.0, 1.0], _masks([0, 1]), None, "Label 'y' of node 1 (in 'train_mask') is 1.5: labels must be whole class numbers"),
        ([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [1.0, 1.0]], _masks([0, 1]), None, "Multi-label 'y' of node 1 (in 'train_mask') has values outside [0, 1]"),
        ([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]], _masks([0, 1]), 3, "'num_classes'=3 does not match the 2 columns"),
        ([0, 1, 1, 0], _masks([0]), 0, "'num_classes' to be an integer >= 1 (got 0)"),
    ],
)
def test_bad_labels_name_the_node_value_and_split(y, masks, num_classes, message):
    with pytest.raises(ValueError) as info:
        Graph.from_edge_index(EDGES, 4, y=torch.tensor(y), num_classes=num_classes, **masks)
    assert message in str(info.value)


def test_unlabeled_nodes_outside_the_splits_and_num_classes():
    graph = Graph.from_edge_index(EDGES, 4, y=torch.tensor([0, 1, -1, 1]), **_masks([0, 1], [3]))
    assert graph.num_classes == 2 and graph.y.tolist() == [0, 1, -1, 1]
    given = Graph.from_edge_index(EDGES, 4, y=torch.tensor([0, 1, -1, 1]), num_classes=5, **_masks([0, 1], [3]))
    assert given.num_classes == 5 and given.fingerprint() != graph.fingerprint()
    assert given.subgraph(torch.tensor([0, 1])).num_classes == 5 and given.to_undirected().num_classes == 5
    assert given.with_(y=torch.tensor([0, 1, 2, 2])).num_classes == 3  # new labels: inferred again
    float_labels = Graph.from_edge_index(EDGES, 4, y=torch.tensor([0.0, 1.0, float("nan"), 2.0]), **_masks([0, 1], [3]))
    assert float_labels.y.dtype == torch.long and float_labels.y.tolist() == [0, 1, -1, 2]  # NaN: unlabeled
    column = Graph.from_edge_index(EDGES, 4, y=torch.tensor([[0], [1], [1], [0]]))
    assert column.y.tolist() == [0, 1, 1, 0] and column.num_classes == 2
    multi = Graph.from_edge_index(EDGES, 4, y=torch.tensor([[0, 1], [1, 1], [0, 0], [1, 0]]), **_masks([0, 1]))
    assert multi.y.dtype == torch.float32 and multi.num_classes == 2
    assert Graph.from_edge_index(EDGES, 4).num_classes == 0
    with pytest.raises(ValueError, match="'num_classes'=3 was given but the graph has no labels"):
        Graph.from_edge_index(EDGES, 4, num_classes=3)
