"""`gnndist bench link`: flags are checked, edge ids are found the way DGL numbers them, a quick run trains
gnndist (1 worker; 2 in the slow tier) with DGL skipped (the report says why), and (``dgl`` marker, compat environment)
DGL's link peer starts from gnndist's initial weights and trains whole epochs of the training edges."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from gnndist.benchmarks.link import _add_ratios, markdown, parse_args
from gnndist.benchmarks.peers import edge_ids, write_graph
from gnndist.graph import Graph
from gnndist.launch.cli import main as cli_main


def test_flags_parse_and_bad_values_name_the_flag(tmp_path, capsys):
    from gnndist.launch.bench_cmd import BENCHMARKS

    assert "link" in BENCHMARKS
    args = parse_args(["--out", str(tmp_path), "--fanouts", "15,10", "--workers", "2", "--train-fraction", "0.1", "--exclude", "none"])
    assert args.fanouts == [15, 10] and args.workers == [2] and args.train_fraction == 0.1 and args.exclude == "none" and args.threads == 1
    for flags, message in [
        (["--fanouts", "ten"], "--fanouts expects comma-separated integers"),
        (["--epochs", "0"], "--epochs must be >= 1 (got 0)"),
        (["--workers", "0"], "--workers must be >= 1 (got [0])"),
        (["--train-fraction", "0.9"], "--train-fraction must be in (0, 0.85] (got 0.9)"),
    ]:
        with pytest.raises(SystemExit):
            parse_args(["--out", str(tmp_path), *flags])
        assert message in capsys.readouterr().err


def test_edge_ids_follow_dgl_numbering_and_name_a_missing_pair():
    graph = Graph.from_edge_index(torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 0]]), 4)
    find = edge_ids(graph.indptr, graph.indices)
    src, dst = torch.tensor([1, 0, 3, 2]), torch.tensor([2, 1, 0, 1])
    ids = find(src, dst)
    # DGL's csc graph numbers an edge by its position in ``indices``; its destination is the CSR row holding it
    assert torch.equal(graph.indices[ids], src) and torch.equal(graph.dst()[ids], dst)
    with pytest.raises(ValueError, match=r"\(0, 3\) is not an edge of the graph \(1 of 2 pairs are not\)"):
        find(torch.tensor([0, 0]), torch.tensor([1, 3]))


def test_ratios_are_to_dgl_of_the_same_run():
    row = lambda system, workers, edges, cpu: dict(system=system, workers=workers, cache="-", epoch_s=1.0, edges_per_s=edges, edges_per_cpu_s=cpu, test_auc=0.9, split_s={"sample_s": 0.1}, cache_hit_rate=None)  # noqa: E731
    rows = [row("dgl", 1, 4000.0, 4000.0), row("gnndist", 1, 6000.0, 3000.0), row("gnndist", 2, 2000.0, 1000.0)]
    _add_ratios(rows)
    assert [(r["vs_dgl"], r["cpu_vs_dgl"]) for r in rows] == [(1.0, 1.0), (1.5, 0.75), (0.5, 0.25)]
    result = {
        "graph": dict(name="sbm", num_nodes=10, message_passing_edges=20, train_edges=5, test_edges=2),
        "settings": dict(fanouts=[10, 5], hidden=8, batch_size=4, negatives=1, lr=0.01, dropout=0.0, epochs=2, exclude="reverse_id", cache="degree", cache_capacity=0.2, prefetch=2, threads=1),
        "environment": dict(dgl={"dgl": "2.1.0", "torch": "2.2.1"}, torch="2", cpus=2, load_average_before=[0, 0, 0], load_average_after=[0, 0, 0], wall_s=60.0),
        "rows": rows,
    }
    table = markdown(result)
    assert "DGL: 2.1.0 on torch 2.2.1, exclude='reverse_id'" in table
    assert "| DGL 2.1 | 1 | - | 4.00k | 1.00x | 4.00k | 1.00x |" in table and "| gnndist | 1 | - | 6.00k | 1.50x | 3.00k | 0.75x |" in table


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2 workers: two more Ray actors and METIS, ~30 s here
def test_quick_run_trains_gnndist_without_dgl(tmp_path, ray_session, workers):
    flags = ["--quick", "--no-dgl", "--workers", str(workers), "--epochs", "2", "--batch-size", "256", "--train-fraction", "0.5"]
    assert cli_main(["bench", "link", "--out", str(tmp_path), *flags]) == 0
    result = json.loads((tmp_path / "link.json").read_text())
    assert result["environment"]["dgl"] == "skipped (--no-dgl)" and result["graph"]["train_edges"] > 256
    (row,) = result["rows"]
    assert (row["system"], row["workers"], row["cache"]) == ("gnndist", workers, "none" if workers == 1 else "degree")
    assert row["edges_per_s"] > 0 and row["edges_per_cpu_s"] > 0 and row["vs_dgl"] is None and len(row["losses"]) == 2
    assert 0.55 < row["test_auc"] <= 1.0, row  # sbm's classes make links predictable: better than chance after 2 epochs
    assert (row["remote_bytes_per_epoch"] > 0) == (workers > 1)  # only a partitioned run fetches remote rows
    assert "DGL: skipped (--no-dgl)" in (tmp_path / "link.md").read_text()


# ------------------------------------------------------------------ DGL (compat environment)
@pytest.fixture()
def tiny_link(tmp_path):
    """The quick graph's link split, written as the DGL peer reads it, with gnndist's initial model."""
    from gnndist.benchmarks.peers import sage_weights
    from gnndist.benchmarks.sampling import load_graph
    from gnndist.models import ModelSpec
    from gnndist.tasks.link import LinkTask

    prepared = LinkTask(split=(0.2, 0.05, 0.1)).prepare(load_graph("sbm-small"), seed=0)
    graph, split = prepared.graph, prepared.targets
    spec = ModelSpec(name="sage", num_features=graph.num_features, num_classes=16, hidden=16, layers=2, dropout=0.0, aggregation="csr_spmm", lr=0.01, weight_decay=0.0, decoder="dot")
    model, _ = spec.build()
    npz = tmp_path / "graph.npz"
    write_graph(graph, npz, train_pairs=split.train.numpy(), test_pos=split.test.pos.numpy(), test_neg_dst=split.test.neg_dst.numpy(), **sage_weights(model.encoder.convs))
    return graph, split, model, npz


@pytest.mark.dgl
@pytest.mark.parametrize("exclude", ["reverse_id", "none"])
def test_dgl_link_peer_starts_from_gnndists_weights_and_trains_every_training_edge(tiny_link, tmp_path, exclude):
    from gnndist.benchmarks.child import ChildProcess, peer_command
    from gnndist.block import Block

    graph, split, model, npz = tiny_link
    spec = dict(npz=str(npz), fanouts=[10, 5], batch_size=64, hidden=16, dropout=0.0, lr=0.01, weight_decay=0.0, negatives=1, exclude=exclude, threads=1)
    with ChildProcess(peer_command(sys.executable, "dgl_link", spec), "DGL link peer", 300, 1) as child:
        assert child.info["dgl"].startswith("2.") and child.info["exclude"] == exclude
        with np.load(child.request("scores", out=str(tmp_path / "before.npz"))["scores"], allow_pickle=False) as before:
            pos, neg = torch.from_numpy(before["pos"]), torch.from_numpy(before["neg"])
        with torch.no_grad():  # gnndist's model on the whole graph: DGL's untrained scores are the same
            h = model.eval()(graph.x, Block.from_graph(graph))
            src, dst = split.test.pos
            assert torch.allclose(pos, model.decode(h[src], h[dst]), atol=1e-4)
            assert torch.allclose(neg[:, 0], model.decode(h[src], h[split.test.neg_dst[:, 0]]), atol=1e-4)
        epochs = [child.request("train", epoch=epoch) for epoch in range(3)]
    assert all(e["steps"] == math.ceil(split.train.size(1) / 64) and e["seconds"] > 0 for e in epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"]


@pytest.mark.dgl
def test_quick_run_against_dgl(tmp_path):
    assert cli_main(["bench", "link", "--out", str(tmp_path), "--quick", "--workers", "1", "--epochs", "2", "--batch-size", "256", "--train-fraction", "0.5", "--dgl-python", sys.executable]) == 0
    result = json.loads((tmp_path / "link.json").read_text())
    dgl, gnndist = result["rows"]
    assert dgl["system"] == "dgl" and dgl["steps"] == math.ceil(result["graph"]["train_edges"] / 256)
    assert gnndist["vs_dgl"] == pytest.approx(gnndist["edges_per_s"] / dgl["edges_per_s"])
    assert 0.55 < dgl["test_auc"] <= 1.0 and 0.55 < gnndist["test_auc"] <= 1.0
