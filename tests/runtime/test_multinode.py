"""Two simulated nodes: workers land on both, parts travel through the object store, and training
equals the single-node run of the same config."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gnndist.config import load_config
from gnndist.launch.job import run_job
from gnndist.runtime.checkpoint import read_checkpoint

EPOCHS = 8
JOB = ["mode=fullgraph", "dataset.num_nodes=300", "dataset.feature_dim=8", "model.hidden=8", "model.dropout=0.5", f"train.epochs={EPOCHS}", "train.num_threads=1", "partition.parts=2"]
SCRIPT = Path(__file__).with_name("multinode_job.py")


def final_model(run_dir: Path) -> dict:
    return read_checkpoint(run_dir / "checkpoints" / f"ckpt-{EPOCHS:06d}").load_states()[0]["model"]


def run_on_two_nodes(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    ray_tmp = tempfile.mkdtemp(prefix="gdray-")  # short: Ray's socket paths must stay under 108 bytes
    env = dict(os.environ, RAY_TMPDIR=ray_tmp)  # a Ray of its own: this process keeps the session one
    env.pop("RAY_ADDRESS", None)
    try:
        return subprocess.run([sys.executable, str(SCRIPT), str(run_dir), *args], capture_output=True, text=True, env=env, timeout=600)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_two_nodes_match_one_node(ray_session, tmp_path):
    result = run_on_two_nodes(tmp_path / "two_nodes", *JOB)
    assert result.returncode == 0, result.stderr[-3000:]
    print("\n" + "\n".join(line for line in result.stdout.splitlines() if line.startswith("rank ")))
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report["placement"].values()) == ["node0", "node1"]  # one worker on each node
    local = sorted(int(rank) for rank, node in report["placement"].items() if node == "node0")  # the driver's node
    assert f"Parts: sent through the Ray object store (ranks {local}, on the driver's node, read" in result.stdout

    single = run_job(load_config(None, [*JOB, f"output.dir={tmp_path / 'one_node'}"]), progress=False)
    assert len({w["node_id"] for w in single["workers"]}) == 1
    two, one = final_model(tmp_path / "two_nodes"), final_model(tmp_path / "one_node")
    assert max(float((two[k] - one[k]).abs().max()) for k in one) <= 1e-6
    assert report["summary"]["final"]["loss"] == single["final"]["loss"]


@pytest.mark.slow
def test_a_lost_node_is_replaced_and_training_ends_as_on_one_node(ray_session, tmp_path):
    """The raylet of node1 and every process on it die mid-run: its worker is placed again on node0 (free
    CPUs there), the last checkpoint reloaded, and the final model is that of the uninterrupted run."""
    job = [*JOB, "checkpoint.every=3"]
    result = run_on_two_nodes(tmp_path / "lost", "--lose-node1-after", "4", *job)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    [event] = report["summary"]["recoveries"]
    [removed_at] = [float(line.split()[-1]) for line in result.stdout.splitlines() if line.startswith("removing node1")]
    print(f"\nlost node: {event['kind']} {event['ranks']}, detected after {event['detected_at'] - removed_at:.1f} s, recovery {event['recovery_s']:.1f} s, time lost {event['time_lost_s']:.1f} s")
    assert event["kind"] in ("died", "lost") and event["resumed_epoch"] == 3
    assert sorted(report["placement"].values()) == ["node0", "node0"]  # both workers on the remaining node
    run_job(load_config(None, [*job, f"output.dir={tmp_path / 'one_node'}"]), progress=False)
    lost, one = final_model(tmp_path / "lost"), final_model(tmp_path / "one_node")
    assert max(float((lost[k] - one[k]).abs().max()) for k in one) <= 1e-6
