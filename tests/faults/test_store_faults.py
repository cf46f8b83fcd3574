"""Fault drills on the mini-batch feature/graph stores: a store process killed mid-run."""
import json
import os
import signal
import threading
import time

import psutil
import pytest

from gnndist.config import load_config
from gnndist.launch.job import run_job
from gnndist.runtime.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow  # whole runs, one of them with a store killed mid-run

EPOCHS = 8
MINIBATCH = [
    "mode=minibatch", "dataset.num_nodes=400", "dataset.feature_dim=8", "model.hidden=8", "model.dropout=0.5", f"train.epochs={EPOCHS}",
    "train.batch_size=16", "train.fanouts=[4,4]", "train.num_threads=1", "partition.parts=2", "checkpoint.every=4",
]


def store_processes() -> list[psutil.Process]:
    """Ray names an actor's process after its class (``ray::StoreServer``, ``ray::StoreServer.features``)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("ray::StoreServer" in part for part in (process.info["cmdline"] or [])):
            found.append(process)
    return found


class KillStore(threading.Thread):
    """SIGKILLs one store process once ``metrics.jsonl`` holds ``after_epochs`` epochs."""

    def __init__(self, run_dir, after_epochs: int):
        super().__init__(daemon=True)
        self.run_dir, self.after_epochs = run_dir, after_epochs
        self.killed: int | None = None

    def run(self) -> None:
        metrics = self.run_dir / "metrics.jsonl"
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= self.after_epochs:
                victim = min(store_processes(), key=lambda p: p.pid)
                self.killed = victim.pid
                os.kill(victim.pid, signal.SIGKILL)
                return
            time.sleep(0.005)


def final_model(run_dir) -> dict:
    return read_checkpoint(run_dir / "checkpoints" / f"ckpt-{EPOCHS:06d}").load_states()[0]["model"]


def test_a_store_killed_mid_run_is_restarted_and_the_run_ends_as_an_uninterrupted_one(ray_session, tmp_path):
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    run_job(load_config(None, [*MINIBATCH, f"output.dir={reference}"]), progress=False)
    killer = KillStore(out, after_epochs=3)
    killer.start()
    start = time.monotonic()
    summary = run_job(load_config(None, [*MINIBATCH, f"output.dir={out}"]), progress=False)
    assert killer.killed is not None, "no store was killed: the run ended first"
    assert killer.killed not in {p.pid for p in store_processes()}
    print(f"\nstore kill: run {time.monotonic() - start:.1f} s, recoveries {len(summary['recoveries'])}")
    a, b = final_model(out), final_model(reference)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    losses = lambda run: [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert losses(out) == losses(reference)
