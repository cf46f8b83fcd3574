"""``--devices`` of the end-to-end benchmarks: parsed and checked at the CLI, CUDA refused by name where there
is none, every ratio and target taken within one device, and (``gpu`` marker) a tiny run on CUDA."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from gnndist.benchmarks import fullgraph, minibatch
from gnndist.benchmarks.fullgraph import FullGraphBenchConfig, resolve_devices
from gnndist.benchmarks.fullgraph_report import Row, label, markdown, ratios, targets

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_devices_are_resolved_and_deduplicated():
    parser = argparse.ArgumentParser()
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert resolve_devices(["cpu"], parser) == ("cpu",)
    assert resolve_devices(["auto", "auto"], parser) == (expected,)


def test_an_unknown_device_is_refused_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fullgraph.main(["--out", str(tmp_path), "--devices", "tpu"])
    assert exit_info.value.code == 2 and "--devices='tpu'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        FullGraphBenchConfig(tmp_path, devices=("tpu",))
    with pytest.raises(ValueError, match="distinct devices"):
        FullGraphBenchConfig(tmp_path, devices=("cpu", "cpu"))


@no_cuda
@pytest.mark.parametrize("bench", [fullgraph, minibatch], ids=["fullgraph", "minibatch"])
def test_cuda_without_cuda_is_an_error_naming_the_flag(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--out", str(tmp_path), "--devices", "cuda", "--no-dgl"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "--devices=cuda, but CUDA is not available here" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # refused before anything ran


@no_cuda
def test_the_gnndist_command_refuses_cuda_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gnndist.launch.cli", "bench", "fullgraph", "--out", str(tmp_path), "--devices", "cuda", "--no-dgl"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "--devices=cuda, but CUDA is not available here" in done.stderr and "Traceback" not in done.stderr


def _row(model: str, system: str, variant: str, parts: int, device: str, seconds: float) -> Row:
    return Row(model, system, variant, parts, "sync" if parts > 1 else "-", device=device, epoch_s=[seconds] * 3, peak_rss_bytes=2**30, peak_rss_sum_bytes=2**31)


def test_cpu_ratios_divide_this_runs_medians_directly_not_through_the_dgl_epochs_beside():
    """DGL's epochs beside P > 1 workers ran 1.2-1.6x its single-section ones: dividing by them flattered P > 1."""
    rows = [_row("sage", "gnndist", "gnndist_csr", 1, "cpu", 0.6), _row("sage", "DGL", "gspmm", 1, "cpu", 0.9), _row("sage", "gnndist", "gnndist_csr", 2, "cpu", 0.75)]
    rows[2].reference_dgl_s = [1.4] * 3
    found = ratios(rows, warmup=1)
    assert found[2]["ratio_vs_p1"] == pytest.approx(1.25) and found[2]["ratio_vs_dgl"] == pytest.approx(0.75 / 0.9)
    assert found[0]["ratio_vs_dgl"] == pytest.approx(0.6 / 0.9) and found[1]["ratio_vs_p1"] is None


def test_fullgraph_ratios_and_targets_stay_within_one_device():
    rows = [
        _row("gcn", "gnndist", "gnndist_csr", 1, "cpu", 2.0),
        _row("gcn", "PyG", "csr", 1, "cpu", 4.0),
        _row("gcn", "gnndist", "auto", 1, "cuda:0", 0.01),
        _row("gcn", "PyG", "csr", 1, "cuda:0", 0.04),
        _row("gcn", "gnndist", "auto", 2, "cuda:0", 0.03),
    ]
    found = ratios(rows, warmup=1)
    assert found[0]["ratio_vs_pyg_csr"] == pytest.approx(0.5) and found[2]["ratio_vs_pyg_csr"] == pytest.approx(0.25)
    assert found[4]["ratio_vs_p1"] == pytest.approx(3.0) and found[4]["ratio_vs_pyg_csr"] == pytest.approx(0.75)
    assert found[1]["ratio_vs_p1"] is None  # PyG rows have no gnndist P=1 ratio
    records = [{"label": label(row), **asdict(row), **row.summary(1), **found[i]} for i, row in enumerate(rows)]
    cuda_targets = [t for t in targets(records) if t["device"] == "cuda:0"]
    assert cuda_targets == [{"device": "cuda:0", "model": "gcn", "target": "gnndist P=1: epoch time <= 0.5x PyG CSR", "measured": "0.25x", "met": True}]
    records[2]["peak_cuda_bytes"] = records[2]["peak_cuda_sum_bytes"] = 2**30
    result = {
        "graph": {"name": "sbm", "num_nodes": 10, "num_edges": 20, "num_features": 4, "num_classes": 2},
        "config": {"hidden": 8, "dropout": 0.5, "lr": 0.01, "epochs": 3, "warmup": 1, "partitioner": "metis"},
        "aggregation": {"cpu": "gnndist_csr", "cuda:0": "auto"},
        "devices": {"cpu": "cpu", "cuda:0": "NVIDIA H200"},
        "environment": {"threads": 2, "worker_threads": 1, "cpus": 2, "machine": "x86_64", "load_average_start": [0, 0, 0], "load_average_end": [0, 0, 0], "note": "", "torch": "2", "dgl": "skipped"},
        "rows": records,
        "targets": targets(records),
        "breakdown": {},
        "dropout": None,
    }
    table = markdown(result)
    cpu_section, cuda_section = table.split("## cpu")[1].split("## cuda:0: NVIDIA H200")
    assert "| gcn | PyG csr | 4.000 |" in cpu_section and "0.010" not in cpu_section
    assert "| gcn | gnndist P=2 sync | 0.030 |" in cuda_section and "| 3.00x |" in cuda_section and "| 1.00 |" in cuda_section


def test_minibatch_ratios_compare_one_device_and_fanout():
    def row(system: str, device: str, workers: int, seeds_per_s: float) -> dict:
        return {"system": system, "device": device, "fanouts": [15, 10], "workers": workers, "cache": "none" if system == "gnndist" else "-", "train_seeds_per_s": seeds_per_s}

    rows = [row("pyg", "cpu", 1, 10.0), row("gnndist", "cpu", 1, 5.0), row("pyg", "cuda:0", 1, 100.0), row("gnndist", "cuda:0", 1, 200.0), row("gnndist", "cuda:0", 2, 300.0)]
    minibatch._add_ratios(rows)
    assert [r.get("ratio_vs_pyg") for r in rows] == [None, 0.5, None, 2.0, 3.0]
    assert rows[4]["ratio_vs_1_worker"] == 1.5
    assert minibatch._targets(rows) == [
        {"device": "cuda:0", "fanouts": [15, 10], "target": "gnndist 1 worker: training seeds/s >= 1.5x PyG (same sampler, same GPU)", "measured": "2.00x", "met": True}
    ]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("bench", ["fullgraph", "minibatch"])
def test_quick_cuda_run_writes_a_cuda_section(bench, tmp_path):
    # tiny: this runs in benchmarks/gpu_check.sh's device time, right before the full-size benchmarks (which run P=2 on the GPU)
    extra = ["--parts", "1", "--pyg", "csr", "--no-profile"] if bench == "fullgraph" else ["--workers", "1"]
    done = subprocess.run([sys.executable, "-m", "gnndist.launch.cli", "bench", bench, "--out", str(tmp_path), "--devices", "cuda", "--quick", "--no-dgl", *extra], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / f"{bench}.json").read_text())
    devices = result["devices"] if bench == "fullgraph" else result["environment"]["devices"]
    assert list(devices) == ["cuda:0"] and devices["cuda:0"] == torch.cuda.get_device_name(0)
    cuda_rows = [row for row in result["rows"] if row["device"] == "cuda:0"]
    assert {row["system"].lower() for row in cuda_rows} >= {"gnndist", "pyg"}
    if bench == "fullgraph":
        assert all(row["peak_cuda_bytes"] > 0 and row["median_epoch_s"] > 0 for row in cuda_rows)
        assert next(row for row in cuda_rows if row["system"] == "gnndist")["ratio_vs_pyg_csr"] > 0
    else:
        assert all(row["train_seeds_per_s"] > 0 for row in cuda_rows)
        assert next(row for row in cuda_rows if row["system"] == "gnndist")["ratio_vs_pyg"] > 0
    assert "cuda:0" in (tmp_path / f"{bench}.md").read_text()
