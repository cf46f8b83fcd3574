"""`gnndist train` / `gnndist info` as a user runs them: a real process, real files."""
import json
import subprocess
import sys

import yaml

SMALL = ["mode=single", "dataset.num_nodes=800", "dataset.avg_degree=6", "dataset.feature_dim=16", "train.epochs=4", "model.hidden=16"]


def gnndist(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gnndist.launch.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_train_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    result = gnndist("train", *SMALL, f"output.dir={out}")
    assert result.returncode == 0, result.stderr
    assert "Summary" in result.stdout and "test at best val" in result.stdout
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train"]["epochs"] == 4 and config["output"]["dir"] == str(out)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [0, 1, 2, 3]
    assert {"loss", "train_acc", "val_acc", "test_acc", "epoch_time_s", "bytes_sent"} <= set(lines[-1])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["loss"] == lines[-1]["loss"] and summary["versions"]["torch"]


def test_same_seed_same_losses_across_processes(tmp_path):
    runs = []
    for name in ("a", "b"):
        assert gnndist("train", *SMALL, f"output.dir={tmp_path / name}").returncode == 0
        runs.append([json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()])
    assert runs[0] == runs[1]


def test_yaml_file_and_existing_run_directory(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"mode": "single", "model": {"name": "gcn", "hidden": 8}, "train": {"epochs": 2}, "dataset": {"num_nodes": 300, "feature_dim": 8}, "output": {"dir": str(tmp_path / "r")}}))
    assert gnndist("train", str(job)).returncode == 0
    again = gnndist("train", str(job))
    assert again.returncode == 1 and "already holds results" in again.stderr and "--force" in again.stderr
    assert gnndist("train", str(job), "--force").returncode == 0


def test_default_job_is_distributed(tmp_path):
    """`gnndist train` with no file: 2 workers on an embedded local Ray (here on a smaller graph)."""
    out = tmp_path / "run"
    result = gnndist("train", "--no-progress", "dataset.num_nodes=1500", "train.epochs=3", f"output.dir={out}")
    assert result.returncode == 0, result.stderr
    assert "mode / model              fullgraph / sage" in result.stdout
    assert "Partition quality: metis, 2 parts" in result.stdout
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(m["bytes_sent"] > 0 and "comm_time_s" in m for m in lines)


def test_errors_are_one_line_and_nonzero(tmp_path):
    result = gnndist("train", "train.epochz=3")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["gnndist train: error: Invalid config (defaults): train.epochz: unknown key"]
    result = gnndist("train", "dataset.name=planetoid:cora", f"dataset.root={tmp_path}", f"output.dir={tmp_path / 'o'}")
    assert result.returncode == 1 and "missing raw file(s)" in result.stderr and "Traceback" not in result.stderr


def test_info_reports_capabilities():
    result = gnndist("info")
    assert result.returncode == 0
    for key in ("torch", "torch_geometric", "ray", "dgl", "pymetis", "cuda"):
        assert any(line.startswith(key) for line in result.stdout.splitlines()), key


def test_every_subcommand_is_reachable_from_the_console_script():
    result = subprocess.run(["gnndist", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("train", "partition", "report", "bench", "info"):
        assert command in result.stdout, command
    result = subprocess.run(["gnndist", "bench", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "aggregation" in result.stdout
