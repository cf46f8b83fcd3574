"""HeteroGraph: validation errors naming the type or relation, PyG/DGL round trips, the homogeneous view."""
import pytest
import torch

from gnndist.hetero import HeteroGraph


def academic(add_reverse: bool = False, **changes) -> HeteroGraph:
    """Papers (features, labels, splits), authors (features), fields (featureless)."""
    options = dict(
        num_nodes={"paper": 4, "author": 3, "field": 2},
        edge_index={
            ("author", "writes", "paper"): torch.tensor([[0, 1, 2, 2], [0, 0, 3, 1]]),
            ("paper", "cites", "paper"): torch.tensor([[0, 1, 3], [2, 3, 0]]),
            ("paper", "has_topic", "field"): torch.tensor([[0, 1, 2, 3], [0, 1, 1, 0]]),
        },
        x={"paper": torch.arange(12.0).view(4, 3), "author": torch.ones(3, 2)},
        y={"paper": torch.tensor([0, 1, 2, 1])},
        train_mask={"paper": torch.tensor([True, True, False, False])},
        test_mask={"paper": torch.tensor([False, False, True, True])},
        add_reverse=add_reverse,
    )
    options.update(changes)
    return HeteroGraph.from_edge_index(**options)


def test_builds_typed_csr_and_reverse_relations():
    graph = academic(add_reverse=True)
    assert graph.target == "paper" and graph.nodes["paper"].num_classes == 3
    assert graph.num_nodes == 9 and graph.num_edges == 22
    assert ("paper", "rev_writes", "author") in graph.edges
    writes = graph.edge_index(("author", "writes", "paper"))
    assert writes.tolist() == [[0, 1, 2, 2], [0, 0, 1, 3]]  # CSR order: by destination, then source
    assert graph.edge_index(("paper", "rev_writes", "author")).tolist() == [[0, 0, 1, 3], [0, 1, 2, 2]]
    assert graph.nodes["field"].x is None and graph.inputs()["field"].tolist() == [0, 1]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"edge_index": {("author", "writes", "paper"): torch.tensor([[3], [0]])}}, r"source id 3 out of range for node type 'author'"),
        ({"edge_index": {("author", "writes", "paper"): torch.tensor([[0], [4]])}}, r"destination id 4 out of range for node type 'paper'"),
        ({"edge_index": {("venue", "hosts", "paper"): torch.tensor([[0], [0]])}}, r"unknown source node type 'venue'"),
        ({"x": {"paper": torch.ones(5, 3)}}, r"Node type 'paper': Expected 'x' of shape \[4, F\]"),
        ({"y": {}}, r"Node type 'paper' has split masks \(train_mask, test_mask\) but no labels 'y'"),
        ({"target": "author"}, r"target='author': the target node type has no labels 'y'"),
        ({"x": {"venue": torch.ones(1, 1)}}, r"'x' names unknown node type\(s\) \['venue'\]"),
        ({"num_nodes": {"paper": 4, "author": 0, "field": 2}}, r"Node type 'author': expected num_nodes >= 1"),
    ],
)
def test_bad_input_names_the_type_or_relation(changes, message):
    with pytest.raises(ValueError, match=message):
        academic(**changes)


def test_pyg_round_trip_keeps_tensors_and_fingerprint():
    graph = academic(add_reverse=True)
    back = HeteroGraph.from_pyg(graph.to_pyg())
    assert back.fingerprint() == graph.fingerprint()
    assert back.edge_types == graph.edge_types and back.target == "paper"
    for edge_type in graph.edge_types:
        assert torch.equal(back.edge_index(edge_type), graph.edge_index(edge_type))
    for node_type, nodes in graph.nodes.items():
        for name, value in nodes.node_data().items():
            assert torch.equal(getattr(back.nodes[node_type], name), value)
    assert academic(x={"paper": torch.zeros(4, 3)}).fingerprint() != graph.fingerprint()


def test_homogeneous_view_offsets_and_edge_types():
    graph = academic(add_reverse=True)
    view = graph.to_homogeneous()
    assert view.offsets == {"paper": 0, "author": 4, "field": 7}
    assert view.node_type.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert view.graph.num_nodes == 9 and view.graph.num_edges == graph.num_edges
    assert torch.bincount(view.edge_type, minlength=6).tolist() == [graph.edges[e].num_edges for e in graph.edge_types]
    for edge_type in graph.edge_types:
        assert torch.equal(view.relation_edges(edge_type), graph.edge_index(edge_type))
    assert view.graph.y.tolist() == [0, 1, 2, 1, -1, -1, -1, -1, -1]  # the target's labels, others unlabeled
    assert view.graph.train_mask.tolist()[:4] == [True, True, False, False] and not view.graph.train_mask[4:].any()
    assert view.graph.x is None  # widths differ per type


@pytest.mark.dgl
def test_dgl_round_trip():
    pytest.importorskip("dgl")
    graph = academic(add_reverse=True)
    back = HeteroGraph.from_dgl(graph.to_dgl())
    assert back.target == "paper"
    for edge_type in graph.edge_types:
        assert torch.equal(back.edge_index(edge_type), graph.edge_index(edge_type))
    assert torch.equal(back.nodes["paper"].x, graph.nodes["paper"].x)


def test_hsbm_is_registered_seeded_and_academic():
    from gnndist.data import load_dataset

    graph = load_dataset("hsbm", num_papers=300, num_authors=200, num_institutions=16, num_fields=32, seed=3)
    assert isinstance(graph, HeteroGraph) and graph.target == "paper" and graph.nodes["paper"].num_classes == 8
    assert {("author", "writes", "paper"), ("paper", "cites", "paper"), ("author", "affiliated_with", "institution"), ("paper", "has_topic", "field"), ("field", "rev_has_topic", "paper")} <= set(graph.edges)
    assert graph.nodes["field"].x is None and graph.nodes["institution"].x is None
    again = load_dataset("hsbm", num_papers=300, num_authors=200, num_institutions=16, num_fields=32, seed=3)
    assert again.fingerprint() == graph.fingerprint()
    # the class signal runs through the fields: most of a paper's fields share its class
    topics = graph.edge_index(("paper", "has_topic", "field"))
    assert float((graph.nodes["paper"].y[topics[0]] == topics[1] % 8).float().mean()) > 0.7


@pytest.mark.parametrize("mode", ["local"])
def test_modes_without_heterogeneous_support_fail_naming_the_mode(mode):
    from gnndist.config import load_config
    from gnndist.modes.base import JobData

    config = load_config(None, ["dataset.name=hsbm", "dataset.num_papers=100", "dataset.num_authors=50", "dataset.num_institutions=8", "dataset.num_fields=8", "model.name=rgcn", f"mode={mode}"])
    with pytest.raises(ValueError, match=f"dataset.name='hsbm' is a heterogeneous graph: mode='{mode}' is not yet supported for heterogeneous graphs \\(modes that train on them: fullgraph, minibatch, single\\)"):
        _ = JobData(config).spec


def test_minibatch_refuses_presample_and_bad_fanouts_before_starting():
    from gnndist.config import ConfigError, load_config
    from gnndist.modes.base import JobData

    small = ["dataset.name=hsbm", "dataset.num_papers=100", "dataset.num_authors=50", "dataset.num_institutions=8", "dataset.num_fields=8", "model.name=rgcn", "mode=minibatch"]
    with pytest.raises(ValueError, match="cache.policy='presample' is not yet supported for heterogeneous graphs \\(cache.policy: none, degree, lru\\)"):
        _ = JobData(load_config(None, [*small, "cache.policy=presample"])).spec
    with pytest.raises(ValueError, match=r"unknown relation\(s\) \['paper__likes__paper'\]; the graph's relations: author__writes__paper"):
        _ = JobData(load_config(None, [*small, "train.fanouts={author__writes__paper: [2, 2], paper__likes__paper: [2, 2]}"])).spec
    with pytest.raises(ConfigError, match="unequal length"):
        load_config(None, [*small, "train.fanouts={author__writes__paper: [2, 2], paper__cites__paper: [2]}"])
    spec = JobData(load_config(None, [*small, "train.fanouts=[4, 2]"])).spec
    assert spec.schema.target == "paper"


def test_heterogeneous_jobs_check_the_task_and_the_model():
    from gnndist.config import load_config
    from gnndist.modes.base import JobData

    small = ["dataset.name=hsbm", "dataset.num_papers=100", "dataset.num_authors=50", "dataset.num_institutions=8", "dataset.num_fields=8", "mode=single"]
    with pytest.raises(ValueError, match="task.name='link' is not yet supported for heterogeneous graphs"):
        _ = JobData(load_config(None, [*small, "model.name=rgcn", "task.name=link"])).spec
    with pytest.raises(ValueError, match="model.name='sage' is a homogeneous model but the dataset is a heterogeneous graph; models for it: hsage, mlp, rgcn"):
        _ = JobData(load_config(None, small)).spec
    spec = JobData(load_config(None, [*small, "model.name=rgcn"])).spec
    assert spec.schema.target == "paper" and spec.num_features == 32 and spec.num_classes == 8
