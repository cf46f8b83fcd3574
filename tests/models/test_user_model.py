"""A user's own PyG model (``model.name=module:Class``) trains in every mode through the one adapter, and a
model that does not fit fails at start saying what is missing."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GINConv, SAGEConv

from gnndist.block import Block
from gnndist.config import CacheConfig, ConfigError, TrainConfig, load_config
from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.models.adapter import PyGLayers
from gnndist.partition import build_parts, save_partition
from gnndist.partitioners import PartitionResult, resolve_partitioner
from gnndist.testing import assert_matches_single_process, joined_group
from gnndist.train.fullgraph import LocalFullGraphTrainer, PartSource, start_fullgraph
from gnndist.train.loop import fit
from gnndist.train.minibatch import MiniBatchTrainer, start_minibatch

EPOCHS = 10


class TwoLayerGIN(nn.Module):
    """A plain PyG model as a user writes it: two GINConv layers, ReLU and dropout between them."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        mlp = lambda i, o: nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o))  # noqa: E731
        self.convs = nn.ModuleList([GINConv(mlp(in_channels, hidden_channels)), GINConv(mlp(hidden_channels, out_channels))])
        self.act = nn.ReLU()
        self.dropout = dropout

    def forward(self, x, edge_index):
        h = self.convs[0](x, edge_index)
        return self.convs[1](F.dropout(self.act(h), self.dropout, self.training), edge_index)


class TwoLayerSAGE(nn.Module):
    """Two SAGEConv layers; the activation is a function and dropout a module (like PyG's BasicGNN)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int):
        super().__init__()
        self.layers = nn.ModuleList([SAGEConv(in_channels, hidden_channels), SAGEConv(hidden_channels, out_channels)])
        self.act = F.relu
        self.dropout = nn.Dropout(0.0)

    def forward(self, x, edge_index):
        return self.layers[1](self.dropout(self.act(self.layers[0](x, edge_index))), edge_index)


class NoLayers(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels)


class WrongWidth(TwoLayerSAGE):
    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int):
        super().__init__(in_channels, hidden_channels, out_channels + 3)


class WrongInput(TwoLayerSAGE):
    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int):
        super().__init__(in_channels + 1, hidden_channels, out_channels)


GIN = f"{__name__}:TwoLayerGIN"
SAGE = f"{__name__}:TwoLayerSAGE"


@pytest.fixture(scope="module")
def graph():
    return load_dataset("sbm", num_nodes=300, avg_degree=6, feature_dim=8, num_classes=3, seed=0)


def spec_for(graph, name: str, **changes) -> ModelSpec:
    values = dict(name=name, num_features=graph.num_features, num_classes=graph.num_classes, hidden=16, layers=2, dropout=0.0, lr=0.01, weight_decay=5e-4, seed=0)
    return ModelSpec(**{**values, **changes})


@pytest.mark.parametrize("name", [GIN, SAGE, "gin"])
def test_adapter_equals_the_users_own_forward(graph, name):
    model = spec_for(graph, name).build_model()
    assert isinstance(model, PyGLayers)
    model.eval()
    with torch.no_grad():
        expected = model.module(graph.x, graph.edge_index())
        assert torch.allclose(model(graph.x, Block.from_graph(graph)), expected, atol=1e-5)


@pytest.mark.parametrize("name", [GIN, SAGE, "gin"])
def test_local_mode_matches_single_process(graph, name):
    spec = spec_for(graph, name)
    parts = build_parts(graph, resolve_partitioner("metis").partition(graph, 2, seed=0))
    assert_matches_single_process(graph, spec, LocalFullGraphTrainer(parts, spec), EPOCHS)


def test_config_accepts_an_importable_class_and_shows_the_import_error():
    assert load_config(None, [f"model.name={GIN}"]).model.name == GIN
    with pytest.raises(ConfigError, match=r"model\.name: .*'no_such_module_xyz:Net' cannot be imported: ModuleNotFoundError: No module named 'no_such_module_xyz'"):
        load_config(None, ["model.name=no_such_module_xyz:Net"])
    with pytest.raises(ConfigError, match=r"model\.name: .*cannot be imported: AttributeError: .*NoSuchClass"):
        load_config(None, [f"model.name={__name__}:NoSuchClass"])


def test_a_model_outside_the_protocol_says_what_is_missing(graph):
    with pytest.raises(TypeError, match=r"model.name='.*:NoLayers' \(NoLayers\) has neither `convs` nor `layers`; a model must expose `convs`"):
        spec_for(graph, f"{__name__}:NoLayers").build_model()


def test_a_layer_count_other_than_model_layers_is_named(graph):
    with pytest.raises(ValueError, match=r"model.name='.*:TwoLayerGIN' has 2 layers but model.layers=3: set model.layers=2"):
        spec_for(graph, GIN, layers=3).build_model()


def test_an_output_width_other_than_num_classes_is_named(graph):
    with pytest.raises(ValueError, match=r"model.name='.*:WrongWidth' outputs rows of shape \[6\] but the dataset has num_classes=3"):
        spec_for(graph, f"{__name__}:WrongWidth").build_model()
    with pytest.raises(ValueError, match=r"model.name='.*:WrongInput' fails on a node of num_features=8 inputs: RuntimeError"):
        spec_for(graph, f"{__name__}:WrongInput").build_model()


# ------------------------------------------------------------------ on Ray (the workers import this module by name)
@pytest.fixture(scope="module")
def two_workers(ray_session):
    with joined_group(2, num_threads=1) as group:
        yield group


def test_fullgraph_on_two_workers_matches_single_process(graph, two_workers, tmp_path):
    save_partition(graph, resolve_partitioner("metis").partition(graph, 2, seed=0), tmp_path / "parts")
    spec = spec_for(graph, GIN)
    trainer = start_fullgraph(two_workers, [PartSource(rank, directory=str(tmp_path / "parts")) for rank in range(2)], spec, strategy="sync")
    assert_matches_single_process(graph, spec, trainer, EPOCHS)


def test_minibatch_on_two_workers_reproduces_the_reference(graph, two_workers, tmp_path):
    """Part 0 owns every training node, so the two workers' steps are the reference's steps exactly."""
    node_part = torch.zeros(graph.num_nodes, dtype=torch.long)
    others = (~graph.train_mask).nonzero().flatten()
    node_part[others] = torch.arange(others.numel()) % 2
    save_partition(graph, PartitionResult(node_part, 2, "manual", {}, 0, 0.0, 0, 0), tmp_path / "parts")
    spec, train = spec_for(graph, SAGE), TrainConfig(batch_size=32, fanouts=[5, 3], prefetch=1)
    expected = fit(MiniBatchTrainer(graph, spec, train), 3, progress=False).history
    trainer = start_minibatch(two_workers, [PartSource(rank, directory=str(tmp_path / "parts")) for rank in range(2)], spec, train, CacheConfig(policy="none"))
    try:
        got = fit(trainer, 3, progress=False).history
    finally:
        trainer.shutdown()
    assert [m.loss for m in got] == pytest.approx([m.loss for m in expected], abs=1e-6, rel=0)
    assert [m.test_acc for m in got] == [m.test_acc for m in expected]
