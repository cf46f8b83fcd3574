"""`gnndist bench hetero`: flags are checked, ratios are to DGL's row of the same run, a quick run trains gnndist
through its job interface with DGL skipped (the report says why), and (``dgl`` marker, compat environment) DGL's
heterogeneous peer starts from gnndist's initial R-GCN (the same untrained logits) and trains whole epochs."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from gnndist.benchmarks.hetero import _add_ratios, job_overrides, markdown, parse_args
from gnndist.launch.cli import main as cli_main


def test_flags_parse_and_bad_values_name_the_flag(tmp_path, capsys):
    from gnndist.launch.bench_cmd import BENCHMARKS

    assert "hetero" in BENCHMARKS
    args = parse_args(["--out", str(tmp_path), "--mode", "minibatch", "--fanouts", "15,10"])
    assert (args.mode, args.workers, args.fanouts, args.threads) == ("minibatch", [1, 2], [15, 10], 1)
    assert parse_args(["--out", str(tmp_path), "--mode", "single"]).workers == [1]
    for flags, message in [
        (["--fanouts", "ten"], "--fanouts expects comma-separated integers"),
        (["--epochs", "1"], "--epochs must be >= 2, the first is warm-up (got 1)"),
        (["--mode", "minibatch", "--workers", "0"], "--workers must be >= 1 (got [0])"),
        (["--mode", "single", "--workers", "2"], "--mode single trains in one process: --workers must be 1 (got [2])"),
    ]:
        with pytest.raises(SystemExit):
            parse_args(["--out", str(tmp_path), *flags])
        assert message in capsys.readouterr().err


def test_jobs_differ_only_in_mode_and_workers(tmp_path):
    from gnndist.config import load_config

    settings = dict(fanouts=[10, 5], batch_size=256, hidden=16, dropout=0.5, lr=0.01, epochs=2, threads=1)
    single = job_overrides(tmp_path / "g.npz", tmp_path / "run", "single", 1, **settings)
    minibatch = job_overrides(tmp_path / "g.npz", tmp_path / "run", "minibatch", 2, **settings)
    assert set(minibatch) - set(single) == {"mode=minibatch", "partition.parts=2", "cluster.workers=2", "partition.method=metis"}
    config = load_config(None, minibatch)  # a valid job config, as `gnndist train` would build it
    assert (config.mode, config.model.name, config.train.fanouts, config.train.batch_size, config.partition.parts) == ("minibatch", "rgcn", [10, 5], 256, 2)


def test_ratios_are_to_dgl_of_the_same_run():
    row = lambda system, workers, seeds, cpu: dict(system=system, mode="minibatch", workers=workers, seeds_per_s=seeds, seeds_per_cpu_s=cpu, epoch_s=1.0, cpu_s=1.0, test_acc=0.5)  # noqa: E731
    rows = [row("dgl", 1, 4000.0, 4000.0), row("gnndist", 1, 6000.0, 3000.0), row("gnndist", 2, 2000.0, 1000.0)]
    _add_ratios(rows)
    assert [(r["vs_dgl"], r["cpu_vs_dgl"]) for r in rows] == [(1.0, 1.0), (1.5, 0.75), (0.5, 0.25)]
    result = {
        "graph": dict(num_nodes=10, nodes={"paper": 6, "author": 4}, num_edges=20, relations=2, train_seeds=3, target="paper"),
        "settings": dict(mode="minibatch", fanouts=[10, 5], hidden=8, dropout=0.5, batch_size=4, lr=0.01, epochs=2, threads=1),
        "environment": dict(dgl={"dgl": "2.1.0", "torch": "2.2.1"}, torch="2", cpus=2, load_average_before=[0, 0, 0], load_average_after=[0, 0, 0], wall_s=60.0),
        "rows": rows,
    }
    table = markdown(result)
    assert "DGL: 2.1.0 on torch 2.2.1" in table and "not sampled mini-batches" not in table
    assert "| DGL 2.1 | 1 | 4.00k | 1.00x | 4.00k | 1.00x |" in table and "| gnndist minibatch | 1 | 6.00k | 1.50x | 3.00k | 0.75x |" in table
    result["settings"]["mode"] = "single"
    assert "its seeds/s are training nodes per full-graph epoch (one optimizer step), not sampled mini-batches" in markdown(result)


def test_quick_run_trains_gnndist_through_the_job_without_dgl(tmp_path):
    out = tmp_path / "out"
    assert cli_main(["bench", "hetero", "--out", str(out), "--quick", "--no-dgl", "--mode", "single", "--epochs", "2", "--hidden", "16"]) == 0
    result = json.loads((out / "hetero.json").read_text())
    assert result["environment"]["dgl"] == "skipped (--no-dgl)" and result["graph"]["train_seeds"] == 750
    (row,) = result["rows"]
    assert (row["system"], row["mode"], row["workers"], row["timed_epochs"]) == ("gnndist", "single", 1, 1)
    assert row["seeds_per_s"] > 0 and row["seeds_per_cpu_s"] > 0 and row["vs_dgl"] is None and len(row["losses"]) == 2
    assert 0.0 <= row["test_acc"] <= 1.0
    assert (out / "runs" / "single-w1" / "summary.json").is_file()  # the job wrote its own run directory
    table = (out / "hetero.md").read_text()
    assert "DGL: skipped (--no-dgl)" in table and "not sampled mini-batches" in table


@pytest.mark.slow  # Ray workers, stores and a partition per worker count, ~1 min here
def test_quick_run_of_minibatch_runs_one_job_per_worker_count(tmp_path, ray_session):
    assert cli_main(["bench", "hetero", "--out", str(tmp_path), "--quick", "--no-dgl", "--workers", "1", "2", "--epochs", "2", "--hidden", "16"]) == 0
    result = json.loads((tmp_path / "hetero.json").read_text())
    assert [(row["mode"], row["workers"]) for row in result["rows"]] == [("minibatch", 1), ("minibatch", 2)]
    for row in result["rows"]:
        assert row["seeds_per_s"] > 0 and row["cpu_s"] > 0 and len(row["memory"]["worker_peak_bytes"]) == row["workers"]
        assert (tmp_path / "runs" / f"minibatch-w{row['workers']}" / "summary.json").is_file()


# ------------------------------------------------------------------ DGL (compat environment)
@pytest.mark.dgl
def test_dgl_hetero_peer_starts_from_gnndists_rgcn_and_trains_every_seed(tmp_path):
    from gnndist.benchmarks.child import ChildProcess, peer_command
    from gnndist.benchmarks.peers import DGLHeteroPeer, rgcn_weights
    from gnndist.data import load_dataset
    from gnndist.data.npz import save_npz
    from gnndist.models import ModelSpec

    graph = load_dataset("hsbm", seed=0)
    schema = graph.schema()
    npz, weights = tmp_path / "hsbm.npz", tmp_path / "weights.npz"
    save_npz(graph, npz)
    model, _ = ModelSpec(name="rgcn", num_features=schema.num_features["paper"], num_classes=8, hidden=16, layers=2, dropout=0.5, aggregation="csr_spmm", schema=schema).build()
    np.savez(weights, **rgcn_weights(model))
    spec = dict(npz=str(npz), weights=str(weights), fanouts=[10, 5], batch_size=128, hidden=16, layers=2, dropout=0.5, lr=0.01, weight_decay=0.0, threads=1)
    peer = DGLHeteroPeer(spec)
    with torch.no_grad():  # untrained, whole graph: DGL's R-GCN computes gnndist's logits
        peer.model.eval()
        theirs = peer.model([peer.graph] * 2, peer._inputs({t: torch.arange(peer.graph.num_nodes(t)) for t in peer.graph.ntypes}))["paper"]
        ours = model.eval()(graph.inputs(), graph.block())
    assert torch.allclose(theirs, ours, atol=1e-4)
    with ChildProcess(peer_command(sys.executable, "dgl_hetero", spec), "DGL hetero peer", 300, 1) as child:
        assert child.info["dgl"].startswith("2.")
        epochs = [child.request("train", epoch=epoch) for epoch in range(3)]
        assert 0.0 <= child.request("evaluate")["test_acc"] <= 1.0
    assert all(e["steps"] == math.ceil(750 / 128) and e["seconds"] > 0 for e in epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"]


@pytest.mark.dgl
def test_quick_run_against_dgl(tmp_path):
    assert cli_main(["bench", "hetero", "--out", str(tmp_path), "--quick", "--mode", "single", "--epochs", "2", "--hidden", "16", "--dgl-python", sys.executable]) == 0
    result = json.loads((tmp_path / "hetero.json").read_text())
    dgl, gnndist = result["rows"]
    assert dgl["system"] == "dgl" and dgl["steps"] == math.ceil(750 / 256)
    assert gnndist["vs_dgl"] == pytest.approx(gnndist["seeds_per_s"] / dgl["seeds_per_s"])
    assert 0.0 <= dgl["test_acc"] <= 1.0 and 0.0 <= gnndist["test_acc"] <= 1.0
