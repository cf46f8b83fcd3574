"""Models: each layer equals the PyG layer it is built from; blocks chain for sampled mini-batches."""
import pytest
import torch

from gnndist.block import Block
from gnndist.models import available_models, resolve_model


@pytest.mark.parametrize("widen", [False, True], ids=["narrowing", "widening"])
@pytest.mark.parametrize("name", ["gcn", "sage", "gat"])
def test_layer_equals_pyg_conv(named_graph, name, widen):
    """Both orders of a layer (rows transformed before aggregation, or after) equal the PyG layer."""
    torch.manual_seed(0)
    width = 4 * named_graph.num_features if widen else 3
    model = resolve_model(name, in_channels=named_graph.num_features, hidden_channels=8, out_channels=width, num_layers=1, dropout=0.0)
    x = named_graph.x.float()
    expected = pyg_conv(name, model.convs[0], named_graph.num_features, width)(x, named_graph.edge_index())
    assert torch.allclose(model.forward_layer(0, x, Block.from_graph(named_graph)), expected, atol=1e-5)


def pyg_conv(name, conv, in_channels, out_channels):
    """The PyG layer with ``conv``'s weights: GCN and GraphSAGE hold PyG's parameters under PyG's names (and
    draw them as PyG does), GAT is PyG's layer itself."""
    from torch_geometric.nn import GCNConv, SAGEConv

    if name == "gat":
        return conv
    layer = GCNConv(in_channels, out_channels) if name == "gcn" else SAGEConv(in_channels, out_channels, aggr="mean")
    layer.load_state_dict(conv.state_dict())
    return layer


@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_weights_equal_pyg_layers_seeded(name):
    """A seed gives GCN and GraphSAGE the weights PyG's layers draw, under the same names (checkpoints carry over)."""
    from torch_geometric.nn import GCNConv, SAGEConv

    torch.manual_seed(3)
    model = resolve_model(name, in_channels=7, hidden_channels=5, out_channels=3)
    torch.manual_seed(3)
    layers = [GCNConv(7, 5), GCNConv(5, 3)] if name == "gcn" else [SAGEConv(7, 5), SAGEConv(5, 3)]
    for index, layer in enumerate(layers):
        ours = model.convs[index].state_dict()
        assert list(ours) == list(layer.state_dict())
        assert all(torch.equal(ours[key], value) for key, value in layer.state_dict().items())


@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_bipartite_block_matches_full_graph_rows(named_graph, name):
    """A block with destinations 0..k-1 and all sources gives the full-graph rows 0..k-1 (whole-graph degrees)."""
    torch.manual_seed(0)
    model = resolve_model(name, in_channels=named_graph.num_features, hidden_channels=8, out_channels=3, dropout=0.0)
    full = Block.from_graph(named_graph)
    k = named_graph.num_nodes // 2
    sub = Block(full.indptr[: k + 1], full.indices[: int(full.indptr[k])], full.num_src, src_degree=named_graph.in_degrees())
    x = named_graph.x.float()
    assert torch.allclose(model.forward_layer(0, x, sub), model.forward_layer(0, x, full)[:k], atol=1e-6)


def test_registry_and_bad_options():
    assert available_models() == ["gat", "gcn", "gin", "hsage", "mlp", "rgcn", "sage"]
    with pytest.raises(KeyError, match="Unknown model 'gnn'; available: gat, gcn, gin, hsage, mlp, rgcn, sage"):
        resolve_model("gnn", in_channels=2, hidden_channels=2, out_channels=2)
    with pytest.raises(ValueError, match="num_layers >= 1 \\(got 0\\)"):
        resolve_model("gcn", in_channels=2, hidden_channels=2, out_channels=2, num_layers=0)
    with pytest.raises(ValueError, match="divisible by heads"):
        resolve_model("gat", in_channels=2, hidden_channels=6, out_channels=2, heads=4)


@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_layer0_dropout_by_column_blocks_equals_dropping_the_whole_input(monkeypatch, named_graph, name):
    """Layer 0 drops and aggregates its input a column block at a time (a worker's owned rows pulling from owned
    + halo rows here): output and gradients equal dropping the whole input with the same draws first."""
    import copy

    import gnndist.models.gnn as gnn
    from gnndist.models.dropout import dropout

    full = Block.from_graph(named_graph)
    k = named_graph.num_nodes // 2
    block = Block(full.indptr[: k + 1], full.indices[: int(full.indptr[k])], full.num_src, src_degree=named_graph.in_degrees())
    x = torch.randn(named_graph.num_nodes, 48)
    monkeypatch.setattr(gnn, "INPUT_BLOCK_BYTES", x.numel() * x.element_size() // 3)  # 3 blocks of 16 columns
    torch.manual_seed(0)
    fused = resolve_model(name, in_channels=48, hidden_channels=48, out_channels=3, dropout=0.5)
    composed = copy.deepcopy(fused)
    composed.fuses_input_dropout = False
    assert fused.defers_dropout(0, x) and not composed.defers_dropout(0, x)
    assert not fused.defers_dropout(0, x.clone().requires_grad_()) and not fused.defers_dropout(1, x)

    torch.manual_seed(7)
    out = fused.forward_layer(0, x, block)
    torch.manual_seed(7)
    dropped = torch.cat([dropout(x[:, start : start + 16], 0.5) for start in range(0, 48, 16)], dim=1)
    expected = composed.aggregate(0, dropped, block)
    assert (dropped == 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert torch.allclose(out, expected, atol=1e-6)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    for (key, got), want in zip(fused.convs[0].named_parameters(), composed.convs[0].parameters()):
        assert got.grad is not None and torch.allclose(got.grad, want.grad, atol=1e-5), key

    # every source is a destination (a whole graph): nothing to free early, the input is dropped whole
    torch.manual_seed(7)
    whole = fused.forward_layer(0, x, full)
    torch.manual_seed(7)
    assert torch.allclose(whole, composed.aggregate(0, dropout(x, 0.5), full), atol=1e-6)


def test_spec_builds_fused_adam_where_torch_has_it_and_it_steps_like_the_plain_one():
    from gnndist.models.spec import ModelSpec

    spec = ModelSpec(name="sage", num_features=8, num_classes=3, hidden=16, layers=2, lr=0.01, weight_decay=5e-4, seed=0)
    model, optimizer = spec.build()
    assert optimizer.defaults["fused"] == (torch.torch_version.TorchVersion(torch.__version__) >= "2.4")
    plain_model = spec.build_model()
    plain = torch.optim.Adam(plain_model.parameters(), lr=0.01, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for a, b in zip(model.parameters(), plain_model.parameters()):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        optimizer.step()
        plain.step()
    for a, b in zip(model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
