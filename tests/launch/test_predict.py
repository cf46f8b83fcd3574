"""`gnndist predict RUN_DIR` and `gnndist.load_model`: exported predictions give the accuracy the run reported,
on the run's partition, a new one or one process; embeddings do not depend on the partition."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch_geometric.nn import SAGEConv

import gnndist
from gnndist.block import Block
from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.launch.cli import main
from gnndist.launch.job import run_job
from gnndist.launch.predict_cmd import predict
from gnndist.runs import read_predictions
from gnndist.train.metrics import SplitCounts

WORKERS = ["cluster.cpus_per_worker=0.5", "train.num_threads=1"]


class UserSAGE(nn.Module):
    """A user's model, trained through model.name=module:Class and given back by load_model as this class."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int):
        super().__init__()
        self.convs = nn.ModuleList([SAGEConv(in_channels, hidden_channels), SAGEConv(hidden_channels, out_channels)])
        self.act = nn.ReLU()

    def forward(self, x, edge_index):
        return self.convs[1](self.act(self.convs[0](x, edge_index)), edge_index)


@pytest.fixture(scope="module")
def cora(planetoid_root):
    return load_dataset("planetoid:cora", root=str(planetoid_root))


@pytest.fixture(scope="module")
def cora_run(ray_session, planetoid_root, tmp_path_factory):
    """A 2-part full-graph run on Cora (its summary and folder)."""
    run_dir = tmp_path_factory.mktemp("cora") / "run"
    overrides = ["mode=fullgraph", "dataset.name=planetoid:cora", f"dataset.root={planetoid_root}", "partition.parts=2", "train.epochs=10", "model.hidden=16", *WORKERS, f"output.dir={run_dir}"]
    return run_job(load_config(None, overrides), progress=False), run_dir


def exported_accuracies(cora, out) -> dict:
    exported = read_predictions(out)
    assert torch.equal(exported.global_ids, torch.arange(cora.num_nodes))
    accuracies = SplitCounts.of(exported.rows, cora.y, (cora.train_mask, cora.val_mask, cora.test_mask)).accuracies()
    return dict(zip(("train", "val", "test"), accuracies))


@pytest.mark.parametrize("parts", [None, 3], ids=["run's 2 parts", "3 new parts"])
def test_predictions_give_the_runs_accuracy(cora, cora_run, parts, tmp_path):
    summary, run_dir = cora_run
    meta = predict(run_dir, out=str(tmp_path / "logits"), parts=parts, overrides=WORKERS, progress=False)
    assert meta["parts"] == (parts or 2) and meta["shape"] == [cora.num_nodes, cora.num_classes]
    assert len(list((tmp_path / "logits").glob("part-*.safetensors"))) == (parts or 2)
    assert exported_accuracies(cora, tmp_path / "logits")["test"] == summary["final"]["test_acc"]
    assert meta["accuracy"]["test"] == summary["final"]["test_acc"]


def test_embeddings_of_two_parts_and_one_process_are_equal(cora, cora_run, tmp_path):
    _, run_dir = cora_run
    predict(run_dir, out=str(tmp_path / "two"), what="embeddings", overrides=WORKERS, progress=False)
    predict(run_dir, out=str(tmp_path / "one"), what="embeddings", layer=1, single=True)
    two, one = read_predictions(tmp_path / "two"), read_predictions(tmp_path / "one")
    assert two.rows.shape == (cora.num_nodes, 16)
    assert torch.allclose(two.rows, one.rows, rtol=0, atol=1e-5)
    meta = json.loads((tmp_path / "two" / "meta.json").read_text())
    assert (meta["what"], meta["layer"], meta["shape"], meta["checkpoint"].endswith("ckpt-000010")) == ("embeddings", 1, [cora.num_nodes, 16], True)


def test_probabilities_and_load_model_agree_with_the_logits(cora, cora_run, tmp_path):
    _, run_dir = cora_run
    predict(run_dir, out=str(tmp_path / "p"), what="probabilities", single=True)
    probabilities = read_predictions(tmp_path / "p").rows
    assert torch.allclose(probabilities.sum(1), torch.ones(cora.num_nodes), atol=1e-5)
    model, config = gnndist.load_model(run_dir)
    assert config.model.name == "sage" and not model.training
    with torch.no_grad():
        logits = model(cora.x, Block.from_graph(cora))
    assert torch.allclose(torch.softmax(logits, 1), probabilities, atol=1e-6)


def test_the_output_folder_is_never_overwritten_unasked(cora_run, tmp_path, capsys):
    _, run_dir = cora_run
    out = tmp_path / "out"
    arguments = ["predict", str(run_dir), "--single", "--out", str(out)]
    assert main(arguments) == 0
    assert "Accuracy from these predictions" in capsys.readouterr().out
    assert main(arguments) == 1
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert main([*arguments, "--force"]) == 0
    mine = tmp_path / "mine"
    (mine / "notes.txt").parent.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["predict", str(run_dir), "--single", "--out", str(mine), "--force"]) == 1
    assert "Refusing to replace" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(("options", "match"), [
    ({"what": "embeddings", "layer": 3}, r"Expected --layer in \[1, 2\] \(the model's layers\) \(got 3\)"),
    ({"what": "logits", "layer": 1}, r"--layer 1 with --what logits"),
    ({"what": "scores"}, r"Expected what in logits, embeddings, probabilities \(got 'scores'\)"),
])
def test_bad_requests_are_named(cora_run, tmp_path, options, match):
    with pytest.raises(ValueError, match=match):
        predict(cora_run[1], out=str(tmp_path / "x"), single=True, **options)
    assert not (tmp_path / "x").exists()


def test_a_user_model_comes_back_as_its_own_class(planetoid_root, cora, tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["mode=single", "dataset.name=planetoid:cora", f"dataset.root={planetoid_root}", f"model.name={__name__}:UserSAGE", "model.hidden=16", "train.epochs=3", "train.num_threads=1", f"output.dir={run_dir}"]
    summary = run_job(load_config(None, overrides), progress=False)
    model, _ = gnndist.load_model(run_dir)
    assert isinstance(model, UserSAGE)
    with torch.no_grad():
        predicted = model(cora.x, cora.edge_index()).argmax(1)
    assert float((predicted[cora.test_mask] == cora.y[cora.test_mask]).double().mean()) == summary["final"]["test_acc"]
