"""The shared epoch loop: a progress bar in a terminal, one plain line per epoch anywhere else."""
import sys

import pytest

from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.train.loop import fit
from gnndist.train.single import SingleProcessTrainer


@pytest.fixture
def trainer():
    graph = load_dataset("sbm", num_nodes=200, avg_degree=4, feature_dim=8, seed=0)
    return SingleProcessTrainer(graph, ModelSpec(name="gcn", num_features=graph.num_features, num_classes=graph.num_classes, hidden=8, dropout=0.0, aggregation="csr_spmm"))


def test_outside_a_terminal_each_epoch_is_one_line(trainer, capsys):
    result = fit(trainer, 3, eval_every=2, description="single:gcn")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["single:gcn epoch 1/3", "single:gcn epoch 2/3", "single:gcn epoch 3/3"]
    assert f"loss {result.history[0].loss:.4f}" in lines[0] and "val " not in lines[0]  # epoch 1 is not evaluated
    assert f"val {result.history[1].val_acc:.3f}" in lines[1] and lines[2].endswith(" s")


def test_in_a_terminal_a_progress_bar_and_no_lines(trainer, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    fit(trainer, 2, description="single:gcn")
    printed = capsys.readouterr()
    assert printed.out == "" and "single:gcn: 100%" in printed.err and "2/2" in printed.err


def test_without_progress_nothing_is_printed(trainer, capsys):
    assert len(fit(trainer, 2, progress=False).history) == 2
    assert capsys.readouterr() == ("", "")
