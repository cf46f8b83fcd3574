"""Checkpoints, --resume and bad input as a user meets them through `gnndist train`."""
import json

import numpy as np
import pytest
import torch

from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.data.npz import save_npz
from gnndist.launch.cli import main
from gnndist.launch.job import run_job
from gnndist.runtime.checkpoint import read_checkpoint

SINGLE = ["mode=single", "dataset.num_nodes=200", "dataset.feature_dim=8", "model.hidden=8", "train.num_threads=1"]


def train(*args: str) -> int:
    return main(["train", *args, "--no-progress"])


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def model_of(run_dir, epoch: int) -> dict:
    return read_checkpoint(run_dir / "checkpoints" / f"ckpt-{epoch:06d}").load_states()[0]["model"]


def assert_same_model(a: dict, b: dict) -> None:
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted 7-epoch single-process run, the reference for resumed ones."""
    out = tmp_path_factory.mktemp("straight") / "run"
    assert train(*SINGLE, "train.epochs=7", f"output.dir={out}") == 0
    return out


def test_resume_continues_exactly_and_can_extend_a_run(tmp_path, straight, capsys):
    out = tmp_path / "run"
    assert train(*SINGLE, "train.epochs=4", "checkpoint.every=2", f"output.dir={out}") == 0
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["ckpt-000002", "ckpt-000004"]
    capsys.readouterr()
    assert train("--resume", str(out), "train.epochs=7") == 0
    assert any(line.split() == ["resumed", "from", "epoch", "4"] for line in capsys.readouterr().out.splitlines())
    assert losses(out) == losses(straight)
    assert_same_model(model_of(out, 7), model_of(straight, 7))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 7 and summary["checkpoint"]["resumed_from_epoch"] == 4


def test_resume_after_metrics_past_the_checkpoint_redoes_those_epochs(tmp_path, straight):
    out = tmp_path / "run"
    assert train(*SINGLE, "train.epochs=5", "checkpoint.every=3", f"output.dir={out}") == 0
    for path in (out / "checkpoints").iterdir():  # as if the run died after epoch 5 was logged but before its checkpoint
        if path.name != "ckpt-000003":
            for file in path.iterdir():
                file.unlink()
            path.rmdir()
    assert train("--resume", str(out), "train.epochs=7") == 0
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == list(range(7))
    assert losses(out) == losses(straight)


def test_resume_with_a_different_config_is_an_error(tmp_path, straight, capsys):
    assert train("--resume", str(straight), "model.hidden=16", "train.lr=0.05") == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("gnndist train: error: Cannot resume from") and "ckpt-000007" in error
    assert "different config (model.hidden: 8 -> 16; train.lr: 0.01 -> 0.05)" in error


def test_resume_with_a_different_graph_is_an_error(tmp_path, capsys):
    graph_file = tmp_path / "graph.npz"
    save_npz(load_dataset("sbm", num_nodes=120, feature_dim=8, seed=0), graph_file)
    out = tmp_path / "run"
    job = ["mode=single", f"dataset.name=npz:{graph_file}", "model.hidden=8", "train.epochs=2"]
    assert train(*job, f"output.dir={out}") == 0
    save_npz(load_dataset("sbm", num_nodes=120, feature_dim=8, seed=1), graph_file)  # same path and config, other data
    capsys.readouterr()
    assert train("--resume", str(out), "train.epochs=3") == 1
    error = capsys.readouterr().err
    assert "it was written for graph" in error and "(the data changed)" in error


def test_damaged_checkpoint_falls_back_to_an_older_one_and_names_the_file(tmp_path, straight, capsys):
    out = tmp_path / "run"
    assert train(*SINGLE, "train.epochs=4", "checkpoint.every=1", f"output.dir={out}") == 0
    damaged = out / "checkpoints" / "ckpt-000004" / "shared.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated
    capsys.readouterr()
    assert train("--resume", str(out), "train.epochs=7") == 0
    err = capsys.readouterr().err
    assert f"Checkpoint file {damaged} is corrupted or truncated" in err and "trying an older checkpoint" in err
    assert losses(out) == losses(straight)
    assert_same_model(model_of(out, 7), model_of(straight, 7))


def test_no_valid_checkpoint_is_an_error_naming_the_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(*SINGLE, "train.epochs=2", f"output.dir={out}") == 0
    meta = out / "checkpoints" / "ckpt-000002" / "meta.json"
    meta.write_text(meta.read_text()[:50])
    assert train("--resume", str(out)) == 1
    assert f"No valid checkpoint in {out / 'checkpoints'}: Checkpoint file {meta} is corrupted or truncated" in capsys.readouterr().err


def test_resume_with_fewer_epochs_than_the_checkpoint_is_an_error(straight, capsys):
    assert train("--resume", str(straight), "train.epochs=3") == 1
    assert "it holds 7 epochs but train.epochs=3; pass train.epochs=7 or more" in capsys.readouterr().err


def test_resume_needs_a_run_directory(tmp_path, capsys):
    assert train("--resume", str(tmp_path / "nothing")) == 1
    assert "no config.yaml there" in capsys.readouterr().err


def test_a_new_run_does_not_reuse_old_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(*SINGLE, "train.epochs=2", f"output.dir={out}", f"checkpoint.dir={tmp_path / 'ck'}") == 0
    assert train(*SINGLE, "train.epochs=2", f"output.dir={tmp_path / 'other'}", f"checkpoint.dir={tmp_path / 'ck'}") == 1
    assert "already holds checkpoints" in capsys.readouterr().err
    assert train(*SINGLE, "train.epochs=3", f"output.dir={tmp_path / 'other'}", f"checkpoint.dir={tmp_path / 'ck'}", "--force") == 0
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["ckpt-000003"]


def test_tensorboard_events_and_report(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert train(*SINGLE, "train.epochs=3", "output.tensorboard=true", f"output.dir={out}") == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("loss")] == [0, 1, 2] and "val_acc" in events.Tags()["scalars"]
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    header, *rows = printed.split("\n\n")[0].splitlines()
    assert header.split() == ["epoch", "loss", "train", "%", "val", "%", "test", "%", "epoch", "ms", "sent", "MiB"]
    assert [row.split()[0] for row in rows] == ["0", "1", "2"] and "Summary" in printed
    png = (out / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_report_errors_name_the_file(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "No metrics in" in capsys.readouterr().err


def test_checkpoint_holds_what_resuming_needs(tmp_path, ray_session):
    """Full-graph on Ray: one file per rank with strategy state and RNG states, the model stored once."""
    out = tmp_path / "run"
    run_job(load_config(None, ["mode=fullgraph", "dataset.num_nodes=200", "dataset.feature_dim=8", "model.hidden=8", "train.epochs=2", "partition.parts=2", "comm.strategy=stale", f"output.dir={out}"]), progress=False)
    checkpoint = read_checkpoint(out / "checkpoints" / "ckpt-000002")
    assert checkpoint.meta.world_size == 2 and checkpoint.meta.config["comm"]["strategy"] == "stale"
    rank = torch.load(checkpoint.path / "rank-00001.pt", weights_only=True)
    assert set(rank) == {"strategy", "rng"} and set(rank["strategy"]) == {"halo", "grads"} and rank["strategy"]["halo"]
    assert isinstance(rank["rng"]["torch"], torch.Tensor) and np.asarray(rank["rng"]["numpy"]["keys"]).shape == (624,)
