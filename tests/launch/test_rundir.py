"""The run directory as `gnndist train` owns it: gnndist's marker, one live run per folder, no debris."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from gnndist.config import load_config
from gnndist.launch.cli import main
from gnndist.launch.rundir import LOCK_FILE, MARKER_FILE, RunDirectory, RunDirectoryBusy
from gnndist.train.metrics import EpochMetrics

SINGLE = ["mode=single", "dataset.num_nodes=200", "dataset.feature_dim=8", "model.hidden=8", "train.num_threads=1", "train.epochs=2"]


def train(*args: str) -> int:
    return main(["train", *args, "--no-progress"])


def test_a_folder_gnndist_did_not_write_is_never_used_or_cleared(tmp_path, capsys):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text("my own metrics\n")
    (folder / "notes.txt").write_text("keep me")
    for flags in ([], ["--force"]):
        assert train(*SINGLE, f"output.dir={folder}", *flags) == 1
        assert f"Refusing to use {folder} as run directory: it is not empty and not a gnndist run directory" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.jsonl", "notes.txt"] and (folder / "metrics.jsonl").read_text() == "my own metrics\n"


def test_a_run_directory_carries_the_marker_and_force_replaces_its_results(tmp_path):
    out = tmp_path / "run"
    assert train(*SINGLE, f"output.dir={out}") == 0
    assert json.loads((out / MARKER_FILE).read_text())["format"] == "gnndist.run"
    assert not (out / LOCK_FILE).exists()  # released at the end
    assert train(*SINGLE, f"output.dir={out}") == 1
    assert train(*SINGLE, "train.epochs=3", f"output.dir={out}", "--force") == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_second_live_run_on_the_same_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with RunDirectory(out) as holder:  # a live run holds the folder
        holder.write_config(load_config(None, [*SINGLE, f"output.dir={out}"]))
        for flags in ([], ["--force"], ["--resume", str(out)]):
            assert train(*SINGLE, f"output.dir={out}", *flags) == 1
            error = capsys.readouterr().err
            assert f"Run directory {out} is in use by another gnndist run (pid {os.getpid()} on host {socket.gethostname()}" in error, error
        assert not (out / "metrics.jsonl").exists()
    assert train(*SINGLE, f"output.dir={out}") == 0  # free again


def test_a_stale_lock_from_a_killed_run_is_taken_over_with_a_warning(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, time; from gnndist.launch.rundir import RunDirectory; RunDirectory({str(out)!r}); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert train(*SINGLE, f"output.dir={out}") == 1
        assert f"in use by another gnndist run (pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == holder.pid  # the dead run's lock is still there
    assert train(*SINGLE, f"output.dir={out}") == 0
    assert f"taking over the lock of {out} from a run that is no longer running (pid {holder.pid} on host {socket.gethostname()}" in capsys.readouterr().err


def test_a_run_that_fails_before_its_first_epoch_leaves_no_directory(tmp_path, capsys):
    out = tmp_path / "runs" / "first"
    assert train("dataset.name=planetoid:cora", f"dataset.root={tmp_path}", f"output.dir={out}") == 1
    assert "missing raw file" in capsys.readouterr().err
    assert not out.exists()
    given = tmp_path / "given"
    given.mkdir()
    assert train("dataset.name=planetoid:cora", f"dataset.root={tmp_path}", f"output.dir={given}") == 1
    assert given.is_dir() and list(given.iterdir()) == []  # an empty folder it was given stays, empty


def test_a_run_that_fails_after_an_epoch_keeps_its_results_and_logs_the_traceback(tmp_path):
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.log_epoch(EpochMetrics(epoch=0, loss=1.0, epoch_time_s=0.1))
    try:
        raise ValueError("rank 1 raised IndexError during 'train_epoch'")
    except ValueError as error:
        run_dir.close(error)
    log = (tmp_path / "run" / "error.log").read_text()
    assert "Traceback" in log and "ValueError: rank 1 raised IndexError during 'train_epoch'" in log
    assert len(run_dir.read_metrics()) == 1 and not (tmp_path / "run" / LOCK_FILE).exists()


def test_resume_needs_a_gnndist_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cannot resume .*: it is not a gnndist run directory"):
        RunDirectory(tmp_path / "nothing", resume=True)
    with pytest.raises(RunDirectoryBusy):
        with RunDirectory(tmp_path / "a"):
            RunDirectory(tmp_path / "a", force=True)


def test_train_force_never_deletes_a_partition_dir_gnndist_did_not_write(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "graph.csv").write_text("0,1\n")
    job = ["mode=local", "dataset.num_nodes=200", "dataset.feature_dim=8", "model.hidden=8", "train.epochs=1", f"partition.dir={folder}"]
    assert train(*job, f"output.dir={tmp_path / 'run'}", "--force") == 1
    assert f"Refusing to replace {folder}: it is not empty and not a partition directory gnndist wrote" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["graph.csv"] and not (tmp_path / "run").exists()
