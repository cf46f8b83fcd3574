"""Fault drills on workers: a worker killed (full-graph and mini-batch) or hung mid-run recovers to exactly
the parameters of an uninterrupted run; detection and recovery times are printed for the fault table."""
import json
import os
import signal
import threading
import time

import pytest
import torch

from gnndist.config import load_config
from gnndist.launch.job import run_job
from gnndist.runtime.checkpoint import read_checkpoint

EPOCHS = 20
JOB = ["mode=fullgraph", "dataset.num_nodes=300", "dataset.feature_dim=8", "model.hidden=8", "model.dropout=0.5", f"train.epochs={EPOCHS}", "train.num_threads=1", "partition.parts=2", "checkpoint.every=5"]


def final_parameters(run_dir) -> dict[str, torch.Tensor]:
    return read_checkpoint(run_dir / "checkpoints" / f"ckpt-{EPOCHS:06d}").load_states()[0]["model"]


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


class SignalWorker(threading.Thread):
    """Sends ``signum`` to worker ``rank``'s process once ``metrics.jsonl`` holds ``after_epochs`` epochs."""

    def __init__(self, run_dir, after_epochs: int, signum: int, rank: int = 1):
        super().__init__(daemon=True)
        self.run_dir, self.after_epochs, self.signum, self.rank = run_dir, after_epochs, signum, rank
        self.sent_at: float | None = None
        self.pid: int | None = None

    def run(self) -> None:
        metrics, workers = self.run_dir / "metrics.jsonl", self.run_dir / "workers.json"
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            if metrics.exists() and workers.exists() and len(metrics.read_text().splitlines()) >= self.after_epochs:
                self.pid = json.loads(workers.read_text())[self.rank]["pid"]
                self.sent_at = time.time()
                os.kill(self.pid, self.signum)
                return
            time.sleep(0.005)


@pytest.fixture(scope="module")
def uninterrupted(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    summary = run_job(load_config(None, [*JOB, f"output.dir={out}"]), progress=False)
    assert summary["recoveries"] == []
    return final_parameters(out)


@pytest.mark.slow  # a worker killed or hung mid-run, then a full run to compare with
def test_killed_worker_recovers_to_the_uninterrupted_result(ray_session, uninterrupted, tmp_path):
    out = tmp_path / "run"
    killer = SignalWorker(out, after_epochs=7, signum=signal.SIGKILL)
    killer.start()
    summary = run_job(load_config(None, [*JOB, f"output.dir={out}"]), progress=False)
    assert killer.sent_at is not None, "the worker was not killed: the run ended first"
    assert max_difference(final_parameters(out), uninterrupted) <= 1e-6
    [event] = summary["recoveries"]
    assert event["kind"] == "died" and event["ranks"] == [1] and event["resumed_epoch"] == 5 and event["failed_epoch"] >= 7
    assert 0 < event["recovery_s"] <= event["time_lost_s"]
    print(f"\nkill: detected after {event['detected_at'] - killer.sent_at:.1f} s, recovery {event['recovery_s']:.1f} s, time lost {event['time_lost_s']:.1f} s, cause {event['cause'][:80]}")
    assert json.loads((out / "recoveries.jsonl").read_text().splitlines()[0])["failure"] == 1
    logged = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(EPOCHS))  # redone epochs replace the lost ones
    assert json.loads((out / "workers.json").read_text())[1]["pid"] != killer.pid  # a new process


MINIBATCH = [
    "mode=minibatch", "dataset.num_nodes=300", "dataset.feature_dim=8", "model.hidden=8", "model.dropout=0.5", "train.epochs=10",
    "train.batch_size=32", "train.fanouts=[4,4]", "train.num_threads=1", "partition.parts=2", "checkpoint.every=3",
]


@pytest.mark.slow  # a worker killed or hung mid-run, then a full run to compare with
def test_killed_minibatch_worker_recovers_to_the_uninterrupted_result(ray_session, tmp_path):
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    run_job(load_config(None, [*MINIBATCH, f"output.dir={reference}"]), progress=False)
    killer = SignalWorker(out, after_epochs=4, signum=signal.SIGKILL, rank=0)
    killer.start()
    summary = run_job(load_config(None, [*MINIBATCH, f"output.dir={out}"]), progress=False)
    assert killer.sent_at is not None, "the worker was not killed: the run ended first"
    [event] = summary["recoveries"]
    assert event["kind"] == "died" and event["ranks"] == [0] and event["resumed_epoch"] in (3, 6)
    print(f"\nminibatch kill: detected after {event['detected_at'] - killer.sent_at:.1f} s, recovery {event['recovery_s']:.1f} s, time lost {event['time_lost_s']:.1f} s")
    final = lambda run: read_checkpoint(run / "checkpoints" / "ckpt-000010").load_states()[0]["model"]  # noqa: E731
    assert max_difference(final(out), final(reference)) <= 1e-6
    assert [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [json.loads(line)["loss"] for line in (reference / "metrics.jsonl").read_text().splitlines()]


HETERO = [
    "mode=fullgraph", "dataset.name=hsbm", "dataset.num_papers=300", "dataset.num_authors=150", "dataset.num_institutions=16", "dataset.num_fields=32",
    "model.name=rgcn", "model.hidden=8", "model.dropout=0.5", f"train.epochs={EPOCHS}", "train.num_threads=1", "partition.parts=2", "checkpoint.every=5",
]


@pytest.mark.slow  # a worker killed mid-run, then a full run to compare with
def test_killed_heterogeneous_worker_recovers_to_the_uninterrupted_result(ray_session, tmp_path):
    """The restarted worker gets its typed part again from the object the driver put (parts of a heterogeneous
    graph live in the Ray object store, not in the partition directory)."""
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    run_job(load_config(None, [*HETERO, f"output.dir={reference}"]), progress=False)
    killer = SignalWorker(out, after_epochs=7, signum=signal.SIGKILL)
    killer.start()
    summary = run_job(load_config(None, [*HETERO, f"output.dir={out}"]), progress=False)
    assert killer.sent_at is not None, "the worker was not killed: the run ended first"
    [event] = summary["recoveries"]
    assert event["kind"] == "died" and event["ranks"] == [1] and event["resumed_epoch"] in (5, 10, 15)
    assert max_difference(final_parameters(out), final_parameters(reference)) <= 1e-6


@pytest.mark.slow  # a worker killed or hung mid-run, then a full run to compare with
def test_hung_worker_is_detected_within_its_timeout(ray_session, uninterrupted, tmp_path):
    out, timeout_s = tmp_path / "run", 15
    stopper = SignalWorker(out, after_epochs=7, signum=signal.SIGSTOP)
    stopper.start()
    try:
        summary = run_job(load_config(None, [*JOB, f"output.dir={out}", f"cluster.timeout_s={timeout_s}"]), progress=False)
    finally:
        if stopper.pid is not None:  # never leave a stopped process behind
            try:
                os.kill(stopper.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert stopper.sent_at is not None, "the worker was not stopped: the run ended first"
    [event] = summary["recoveries"]
    detection_s = event["detected_at"] - stopper.sent_at
    print(f"\nhang: detected after {detection_s:.1f} s (timeout {timeout_s} s), recovery {event['recovery_s']:.1f} s, time lost {event['time_lost_s']:.1f} s")
    assert event["kind"] == "hung" and 1 in event["ranks"] and str(timeout_s) in event["cause"]
    assert detection_s <= timeout_s + 3
    assert max_difference(final_parameters(out), uninterrupted) <= 1e-6
