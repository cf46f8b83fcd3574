"""Heterogeneous models: each layer equals the PyG layer it is built from, a part's destination rows equal the
whole graph's, and bad input fails naming the type, the relation or the option."""
import pytest
import torch

from gnndist.block import Block
from gnndist.hetero import HeteroBlock, HeteroGraph, HeteroSchema
from gnndist.models import ModelSpec, available_models, resolve_model


def academic(**changes) -> HeteroGraph:
    """Papers (features, labels), authors (features of another width), fields (featureless); reverse relations."""
    generator = torch.Generator().manual_seed(0)
    options = dict(
        num_nodes={"paper": 6, "author": 4, "field": 3},
        edge_index={
            ("author", "writes", "paper"): torch.tensor([[0, 1, 2, 2, 3, 3], [0, 0, 3, 1, 4, 5]]),
            ("paper", "cites", "paper"): torch.tensor([[0, 1, 3, 5, 4], [2, 3, 0, 1, 1]]),
            ("paper", "has_topic", "field"): torch.tensor([[0, 1, 2, 3, 4, 5], [0, 1, 1, 0, 2, 2]]),
        },
        x={"paper": torch.randn(6, 5, generator=generator), "author": torch.randn(4, 3, generator=generator)},
        y={"paper": torch.tensor([0, 1, 2, 1, 0, 2])},
        add_reverse=True,
    )
    options.update(changes)
    return HeteroGraph.from_edge_index(**options)


def build(name: str, graph: HeteroGraph, out_channels: int = 3, **options):
    torch.manual_seed(0)
    return resolve_model(name, schema=graph.schema(), hidden_channels=8, out_channels=out_channels, dropout=0.0, **options)


def embedded(model, graph: HeteroGraph) -> dict[str, torch.Tensor]:
    """Layer 0's activated input rows per type (features, projected for rgcn; embeddings of featureless types)."""
    return {t: model.encode(t, model.embed(t, graph.inputs())) for t in model.inputs}


@pytest.mark.parametrize("options", [{}, {"num_bases": 2}, {"num_blocks": 4}])
def test_rgcn_layer_equals_pyg_rgcnconv_on_the_homogeneous_view(options):
    graph = academic()
    model = build("rgcn", graph, out_channels=4, **options)
    h = embedded(model, graph)
    out = model.layer(0, h, graph.block())
    view = graph.to_homogeneous()
    expected = model.convs[0](torch.cat([h[t] for t in graph.node_types]), view.graph.edge_index(), view.edge_type)
    assert set(out) == {"paper", "author", "field"}  # what layer 1 reads to compute the papers
    for node_type, rows in out.items():
        start = view.offsets[node_type]
        assert torch.allclose(rows, expected[start : start + graph.nodes[node_type].num_nodes], atol=1e-5)


def test_hsage_layer_equals_pyg_heteroconv_of_sageconv():
    graph = academic()
    model = build("hsage", graph)
    h = embedded(model, graph)
    out = model.layer(0, h, graph.block())
    expected = model.convs[0](h, {edge_type: graph.edge_index(edge_type) for edge_type in graph.edge_types})
    assert set(out) == set(expected) == {"paper", "author", "field"}
    for node_type, rows in out.items():
        assert torch.allclose(rows, expected[node_type], atol=1e-5)


@pytest.mark.parametrize("name", ["rgcn", "hsage", "mlp"])
def test_shapes_and_the_target_rows(name):
    graph = academic()
    model = build(name, graph)
    out = model(graph.inputs(), graph.block())
    assert out.shape == (6, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())  # every parameter is used: none left idle
    if name != "mlp":
        assert set(model.embeddings) == {"field"} and model.embeddings["field"].num_embeddings == 3


@pytest.mark.parametrize("name", ["rgcn", "hsage", "mlp"])
def test_destination_rows_of_a_part_equal_the_whole_graphs(name):
    """A HeteroBlock whose destinations are the first rows of each type (a part's owned rows, halo rows after
    them) gives the whole graph's rows for those destinations: what a distributed trainer relies on."""
    graph = academic()
    model = build(name, graph)
    model.eval()
    full = graph.block()
    owned = {"paper": 4, "author": 2, "field": 2}
    part = HeteroBlock(
        {edge_type: Block(b.indptr[: owned[edge_type[2]] + 1], b.indices[: int(b.indptr[owned[edge_type[2]]])], b.num_src) for edge_type, b in full.blocks.items()},
        owned,
    )
    whole = model.forward_layer(0, graph.inputs(), full)
    mine = model.forward_layer(0, graph.inputs(), part)
    for node_type, rows in mine.items():
        assert rows.size(0) == owned[node_type]
        assert torch.allclose(rows, whole[node_type][: owned[node_type]], atol=1e-6)


def test_registry_lists_the_heterogeneous_models():
    assert {"rgcn", "hsage", "mlp"} <= set(available_models())


@pytest.mark.parametrize(
    "name, graph_changes, options, error, message",
    [
        ("mlp", {"x": {"author": torch.ones(4, 3)}}, {}, ValueError, r"model 'mlp' reads only the target type's features, but target node type 'paper' has none"),
        ("hsage", {"add_reverse": False}, {}, ValueError, r"model 'hsage': node type 'author' is the destination of no relation"),
        ("rgcn", {}, {"num_blocks": 3}, ValueError, r"num_blocks=3 must divide hidden_channels=8 and out_channels=3"),
        ("rgcn", {}, {"num_bases": 2, "num_blocks": 2}, ValueError, r"Give num_bases or num_blocks, not both"),
        ("rgcn", {}, {"num_layers": 0}, ValueError, r"num_layers >= 1 \(got 0\)"),
    ],
)
def test_models_that_cannot_handle_the_graph_fail_naming_why(name, graph_changes, options, error, message):
    with pytest.raises(error, match=message):
        build(name, academic(**graph_changes), **options)


def test_bad_inputs_and_blocks_name_the_type_or_relation():
    graph = academic()
    model = build("rgcn", graph)
    inputs, block = graph.inputs(), graph.block()
    with pytest.raises(ValueError, match=r"Input of node type 'author': expected float features of shape \[n, 3\] \(got torch.float32 of shape \[4, 2\]\)"):
        model(inputs | {"author": torch.ones(4, 2)}, block)
    with pytest.raises(ValueError, match=r"Input of featureless node type 'field': expected node ids of shape \[n\]"):
        model(inputs | {"field": torch.ones(3, 2)}, block)
    with pytest.raises(KeyError, match=r"The input has no rows of node type 'field'"):
        model({t: x for t, x in inputs.items() if t != "field"}, block)
    venue = ("venue", "hosts", "paper")
    with pytest.raises(ValueError, match=r"Unknown relation\(s\) \[\('venue', 'hosts', 'paper'\)\] in the block"):
        model(inputs, HeteroBlock({**block.blocks, venue: block.blocks[("author", "writes", "paper")]}, block.num_dst))
    writes = ("author", "writes", "paper")
    with pytest.raises(KeyError, match=r"Layer 0 reads relation \('author', 'writes', 'paper'\), which the block lacks"):
        model(inputs, HeteroBlock({e: b for e, b in block.blocks.items() if e != writes}, block.num_dst))
    with pytest.raises(ValueError, match=r"Relation \('author', 'writes', 'paper'\): its block has 4 sources and 6 destinations, but the input has 3 'author' rows"):
        model(inputs | {"author": torch.ones(3, 3)}, block)


def test_model_spec_matches_the_model_to_the_graphs_kind():
    graph = academic()
    hetero = ModelSpec(name="rgcn", num_features=5, num_classes=3, hidden=8, schema=graph.schema())
    assert hetero.build_model()(graph.inputs(), graph.block()).shape == (6, 3)
    with pytest.raises(ValueError, match=r"model.name='rgcn' is a heterogeneous model: it trains on a graph with node and edge types"):
        ModelSpec(name="rgcn", num_features=5, num_classes=3).build_model()
    with pytest.raises(ValueError, match=r"model.name='sage' is a homogeneous model but the dataset is a heterogeneous graph; models for it: hsage, mlp, rgcn"):
        ModelSpec(name="sage", num_features=5, num_classes=3, schema=graph.schema()).build_model()
    with pytest.raises(TypeError, match="Expected schema to be a HeteroSchema"):
        resolve_model("rgcn", schema={"paper": 5}, hidden_channels=8, out_channels=3)
    assert isinstance(graph.schema(), HeteroSchema)
