"""Ctrl-C / SIGTERM stop `gnndist train` cleanly, and an unreachable cluster is a fast, clear error."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from gnndist.config import load_config
from gnndist.launch.job import run_job
from gnndist.runtime.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow  # real processes, each with its own Ray, signalled mid-run

EPOCHS = 60
JOB = ["mode=fullgraph", "dataset.num_nodes=300", "dataset.feature_dim=8", "model.hidden=8", "model.dropout=0.5", f"train.epochs={EPOCHS}", "train.num_threads=1", "partition.parts=2", "checkpoint.every=1"]


@pytest.fixture
def ray_tmp():
    """A short private RAY_TMPDIR for a subprocess's own Ray (socket paths must stay under 108 bytes)."""
    path = tempfile.mkdtemp(prefix="gdray-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_from_a_terminal() -> None:
    """A preexec_fn: Ctrl-C acts as it does for a command started in a terminal (a test session run in the
    background has SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def gnndist(args: list[str], ray_tmp: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, RAY_TMPDIR=ray_tmp)
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "gnndist.launch.cli", "train", *args, "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_terminal, **kwargs,
    )


def processes_of(ray_tmp: str) -> list[psutil.Process]:
    """Live processes started with this RAY_TMPDIR (Ray's services and workers inherit it)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("RAY_TMPDIR") == ray_tmp and alive(process):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def interrupt_after(proc: subprocess.Popen, run_dir, epochs: int, signum: int) -> tuple[dict[psutil.Process, str], str]:
    """Sends ``signum`` once ``epochs`` epochs are logged; returns the run's processes then (with names) and stderr."""
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 400
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= epochs):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no epochs within 400 s"
        time.sleep(0.01)
    children = {}
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            children[child] = child.name()
        except psutil.NoSuchProcess:
            pass
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    return children, stderr


def assert_nothing_left(children: dict[psutil.Process, str], ray_tmp: str) -> None:
    deadline = time.monotonic() + 20  # Ray's services take a moment to exit after ray.shutdown()
    while True:
        left = [p for p in children if alive(p)] + processes_of(ray_tmp)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, [(p.pid, children.get(p)) for p in left]


def test_ctrl_c_stops_cleanly_and_resume_matches_an_uninterrupted_run(ray_session, tmp_path, ray_tmp):
    out = tmp_path / "run"
    proc = gnndist([*JOB, f"output.dir={out}"], ray_tmp)
    children, stderr = interrupt_after(proc, out, 3, signal.SIGINT)
    assert proc.returncode == 130, stderr[-2000:]
    assert "raylet" in children.values() and any(name.startswith("ray::Worker") for name in children.values())
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("gnndist: interrupted; last checkpoint") and message.endswith(f"resume with: gnndist train --resume {out}")
    assert_nothing_left(children, ray_tmp)
    stopped_at = read_checkpoint(message.split("last checkpoint ")[1].split(";")[0]).epoch  # it is valid
    assert 1 <= stopped_at < EPOCHS

    resumed = gnndist(["--resume", str(out)], ray_tmp)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-2000:]
    assert f"resumed from epoch    {stopped_at}".split() == next(line for line in stdout.splitlines() if "resumed from epoch" in line).split()

    reference = tmp_path / "uninterrupted"
    run_job(load_config(None, [*JOB, f"output.dir={reference}"]), progress=False)
    a = read_checkpoint(out / "checkpoints" / f"ckpt-{EPOCHS:06d}").load_states()[0]["model"]
    b = read_checkpoint(reference / "checkpoints" / f"ckpt-{EPOCHS:06d}").load_states()[0]["model"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == list(range(EPOCHS))


def test_sigterm_stops_cleanly(tmp_path, ray_tmp):
    out = tmp_path / "run"
    proc = gnndist([*JOB, f"output.dir={out}"], ray_tmp)
    children, stderr = interrupt_after(proc, out, 2, signal.SIGTERM)
    assert proc.returncode == 130, stderr[-2000:]
    assert f"resume with: gnndist train --resume {out}" in stderr
    assert_nothing_left(children, ray_tmp)
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written checkpoint


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_cluster_is_a_fast_clear_error(tmp_path, ray_tmp, address):
    start = time.monotonic()
    proc = gnndist(["--address", address, "mode=fullgraph", "dataset.num_nodes=200", "dataset.feature_dim=8", f"output.dir={tmp_path / 'run'}"], ray_tmp)
    _, stderr = proc.communicate(timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert stderr.strip().splitlines()[-1] == f"gnndist train: error: Cannot reach the Ray cluster at {address} ([Errno 111] Connection refused); is `ray start --head` running there?"
    assert elapsed < 30, f"took {elapsed:.1f} s (process start, imports and dataset included)"
    assert not processes_of(ray_tmp)


def test_connecting_to_an_unreachable_cluster_fails_in_well_under_a_second():
    code = "import time; from gnndist.runtime import ray_cluster\nstart = time.perf_counter()\ntry:\n    ray_cluster('127.0.0.1:1').__enter__()\nexcept ConnectionError:\n    print(time.perf_counter() - start)"
    elapsed = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout)
    assert elapsed < 1.0


def test_ctrl_c_while_partitioning_leaves_no_folder(tmp_path):
    out = tmp_path / "parts"
    process = subprocess.Popen(
        [sys.executable, "-m", "gnndist.launch.cli", "partition", "sbm", "--method", "metis", "--parts", "4", "-d", "num_nodes=400000", "-d", "avg_degree=20", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_terminal,
    )
    time.sleep(3)  # inside generating or partitioning the graph
    assert process.poll() is None, "partitioning ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in stderr, stderr
    assert os.listdir(tmp_path) == []  # neither the folder nor a hidden temp folder beside it
