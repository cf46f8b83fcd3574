"""The single-process reference trainer: deterministic, and as accurate as the GCN paper on real data."""
import statistics

import pytest
import torch

from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.train.loop import fit
from gnndist.train.single import SingleProcessTrainer


def _losses(graph, name, seed, epochs=5):
    spec = ModelSpec(name=name, num_features=graph.num_features, num_classes=graph.num_classes, hidden=16, layers=2, dropout=0.5, aggregation="csr_spmm", seed=seed)
    trainer = SingleProcessTrainer(graph, spec)
    return [m.loss for m in fit(trainer, epochs, progress=False).history]


@pytest.mark.parametrize("name", ["gcn", "sage", "gat"])
def test_same_seed_same_losses(name):
    graph = load_dataset("sbm", num_nodes=600, avg_degree=6, feature_dim=16, seed=1)
    assert _losses(graph, name, seed=7) == _losses(graph, name, seed=7)
    assert _losses(graph, name, seed=7) != _losses(graph, name, seed=8)


def test_no_train_nodes_is_an_error():
    graph = load_dataset("sbm", num_nodes=100, avg_degree=4, seed=0, train_fraction=0.0)
    spec = ModelSpec(name="gcn", num_features=graph.num_features, num_classes=graph.num_classes, hidden=8, dropout=0.0, aggregation="csr_spmm")
    with pytest.raises(ValueError, match="no training nodes"):
        SingleProcessTrainer(graph, spec)


def kipf_welling_test_accuracy(graph, seeds=range(10)) -> float:
    """Mean test accuracy at the best validation epoch: hidden 16, dropout 0.5, lr 0.01, wd 5e-4, 200 epochs."""
    accuracies = []
    for seed in seeds:
        spec = ModelSpec(name="gcn", num_features=graph.num_features, num_classes=graph.num_classes, hidden=16, layers=2, dropout=0.5, aggregation="csr_spmm", lr=0.01, weight_decay=5e-4, seed=seed)
        trainer = SingleProcessTrainer(graph, spec)
        accuracies.append(fit(trainer, 200, progress=False).test_at_best_val)
    return statistics.mean(accuracies)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name, threshold", [("cora", 0.805), ("citeseer", 0.695)])
def test_gcn_reaches_paper_accuracy(planetoid_root, name, threshold):
    torch.set_num_threads(2)
    graph = load_dataset(f"planetoid:{name}", root=str(planetoid_root))
    accuracy = kipf_welling_test_accuracy(graph)
    print(f"{name}: mean test accuracy over 10 seeds = {100 * accuracy:.2f} %")
    assert accuracy >= threshold
