"""`gnndist train` / `gnndist info` as a user runs them: ``cli.main`` in-process on real files, and one real
console-script process."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gnndist.launch import cli

SMALL = ["mode=single", "dataset.num_nodes=800", "dataset.avg_degree=6", "dataset.feature_dim=16", "train.epochs=4", "model.hidden=16"]


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", *SMALL, f"output.dir={out}"]) == 0
    printed = capsys.readouterr().out
    assert "Summary" in printed and "test at best val" in printed
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train"]["epochs"] == 4 and config["output"]["dir"] == str(out)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [0, 1, 2, 3]
    assert {"loss", "train_acc", "val_acc", "test_acc", "epoch_time_s", "bytes_sent"} <= set(lines[-1])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["loss"] == lines[-1]["loss"] and summary["versions"]["torch"]


def test_run_job_hands_every_logged_epoch_to_on_epoch(tmp_path):
    from gnndist.config import load_config
    from gnndist.launch.job import run_job

    out, seen = tmp_path / "run", []
    run_job(load_config(None, [*SMALL, f"output.dir={out}"]), progress=False, on_epoch=lambda metrics: seen.append((metrics.epoch, metrics.loss, (out / "metrics.jsonl").read_text().count("\n"))))
    assert [(epoch, logged) for epoch, _, logged in seen] == [(0, 1), (1, 2), (2, 3), (3, 4)]  # after the epoch's line is written
    assert [loss for _, loss, _ in seen] == losses(out)


def test_console_script_trains_like_the_in_process_cli(tmp_path):
    """The one test of the installed `gnndist` script (a real process): it trains, and a second process
    given the same seed gives the same losses as the in-process run. Its stdout is a pipe, not a terminal:
    one line per epoch instead of a progress bar."""
    result = subprocess.run([str(Path(sys.executable).with_name("gnndist")), "train", *SMALL, f"output.dir={tmp_path / 'a'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Summary" in result.stdout and "epoch 4/4" in result.stdout
    assert cli.main(["train", *SMALL, f"output.dir={tmp_path / 'b'}"]) == 0
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for command in ("train", "partition", "convert", "report", "bench", "info"):
        assert command in printed, command
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--help"])
    assert exit_info.value.code == 0 and "aggregation" in capsys.readouterr().out


def test_yaml_file_and_existing_run_directory(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"mode": "single", "model": {"name": "gcn", "hidden": 8}, "train": {"epochs": 2}, "dataset": {"num_nodes": 300, "feature_dim": 8}, "output": {"dir": str(tmp_path / "r")}}))
    assert cli.main(["train", str(job)]) == 0
    capsys.readouterr()
    assert cli.main(["train", str(job)]) == 1
    error = capsys.readouterr().err
    assert "already holds results" in error and "--force" in error and "force=True" not in error
    assert cli.main(["train", str(job), "--force"]) == 0


def test_options_and_overrides_in_any_order(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"mode": "single", "train": {"epochs": 5}, "dataset": {"num_nodes": 300, "feature_dim": 8}, "model": {"hidden": 8}}))
    out = tmp_path / "r"
    assert cli.main(["train", str(job), "--no-progress", "train.epochs=2", f"output.dir={out}"]) == 0
    assert len(losses(out)) == 2
    assert cli.main(["train", "train.epochs=3", "--force", str(job), f"output.dir={out}", "--no-progress"]) == 0
    assert len(losses(out)) == 3
    capsys.readouterr()
    assert cli.main(["train", str(job), str(job), f"output.dir={tmp_path / 'x'}"]) == 1
    assert "Expected at most one job YAML file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", str(job), "--nope"])
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_default_job_is_distributed(tmp_path, capsys, ray_session):
    """`gnndist train` with no file: 2 workers on Ray (here the session's, on a smaller graph)."""
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", "dataset.num_nodes=1500", "train.epochs=3", f"output.dir={out}"]) == 0
    printed = capsys.readouterr().out
    assert "mode / model              fullgraph / sage" in printed
    assert "Partition quality: metis, 2 parts" in printed
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(m["bytes_sent"] > 0 and "comm_time_s" in m for m in lines)


def test_errors_are_one_line_and_nonzero(tmp_path, capsys):
    assert cli.main(["train", "train.epochz=3"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == ["gnndist train: error: Invalid config (defaults): train.epochz: unknown key"]
    assert cli.main(["train", "dataset.name=planetoid:cora", f"dataset.root={tmp_path}", f"output.dir={tmp_path / 'o'}"]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "Planetoid 'cora': missing raw file" in error and "Traceback" not in error


def test_unknown_names_are_not_quoted_key_errors(tmp_path, capsys):
    assert cli.main(["partition", "sbm", "--method", "nope", "--out", str(tmp_path / "p")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("gnndist partition: error: ") and "partition.method: unknown partitioner 'nope'; available: " in error and '"' not in error


def test_info_reports_capabilities(capsys):
    assert cli.main(["info"]) == 0
    printed = capsys.readouterr().out
    for key in ("torch", "torch_geometric", "ray", "dgl", "pymetis", "cuda"):
        assert any(line.startswith(key) for line in printed.splitlines()), key


def test_a_benchmark_module_gets_its_flags_unparsed():
    """`gnndist bench fullgraph --quick ...` hands every further flag to the benchmark's own parser."""
    args = cli.parse_args(cli.build_parser(), ["bench", "fullgraph", "--quick", "--out", "x", "--parts", "2"])
    assert (args.benchmark, args.passthrough) == ("fullgraph", ["--quick", "--out", "x", "--parts", "2"])
    args = cli.parse_args(cli.build_parser(), ["--debug", "train", "a.b=1", "--force", "job.yaml", "c.d=2"])
    assert (args.debug, args.force, args.arguments, args.passthrough) == (True, True, ["a.b=1", "job.yaml", "c.d=2"], [])
