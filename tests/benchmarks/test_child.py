"""The benchmarks' child protocol: peers run by file path, answers are bounded in time, DGL is found or skipped with a reason."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from gnndist.benchmarks.child import DGL_PYTHON_ENV, ChildProcess, find_dgl_python, peer_command
from gnndist.benchmarks.peers import write_graph
from gnndist.data import load_dataset
from gnndist.memory import peak_resident_bytes


def test_dgl_is_skipped_with_a_message_naming_the_flag_and_the_variable(tmp_path):
    missing = find_dgl_python(None, environ={})
    assert missing.python is None and "--dgl-python" in missing.note and DGL_PYTHON_ENV in missing.note
    assert find_dgl_python(None, disabled=True).note == "skipped (--no-dgl)"
    absent = find_dgl_python(None, environ={DGL_PYTHON_ENV: str(tmp_path / "nowhere" / "python")})
    assert absent.python is None and "does not exist" in absent.note and "nowhere" in absent.note


@pytest.mark.skipif(importlib.util.find_spec("dgl") is not None, reason="this environment has DGL")
def test_a_python_without_dgl_is_skipped_with_the_import_error():
    found = find_dgl_python(Path(sys.executable), environ={})
    assert found.python is None and "cannot import dgl" in found.note and "ModuleNotFoundError" in found.note


def test_pyg_peer_runs_by_file_path_and_answers_requests(tmp_path):
    graph = load_dataset("sbm", num_nodes=300, avg_degree=6, num_classes=3, feature_dim=8, seed=0)
    npz = tmp_path / "graph.npz"
    write_graph(graph, npz)
    spec = dict(library="pyg", variant="csr", model="sage", npz=str(npz), hidden=8, dropout=0.5, lr=0.01, weight_decay=5e-4, seed=0, threads=1)
    command = peer_command(sys.executable, "fullgraph", spec)
    assert command[1].endswith("peers.py") and "-m" not in command  # by path: works where gnndist is not installed
    with ChildProcess(command, "PyG csr", timeout_s=120, threads=1) as child:
        assert child.info["version"].startswith("torch_geometric") and child.info["threads"] == 1
        losses = [child.request("epoch", epoch=epoch)["loss"] for epoch in range(3)]
        assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
        accuracies = child.request("evaluate")
        assert set(accuracies) == {"train_acc", "val_acc", "test_acc"} and 0.0 <= accuracies["test_acc"] <= 1.0
        assert peak_resident_bytes(child.process.pid) > 50 * 2**20  # torch + PyG loaded in the child
    assert child.process.returncode == 0


def test_a_silent_child_is_killed_at_the_timeout():
    with pytest.raises(TimeoutError, match="sleeper did not answer within 1 s"):
        ChildProcess([sys.executable, "-c", "import time; time.sleep(60)"], "sleeper", timeout_s=1)


def test_a_child_that_dies_is_reported_with_its_exit_code():
    with pytest.raises(RuntimeError, match="crasher exited with code 3"):
        ChildProcess([sys.executable, "-c", "import sys; sys.exit(3)"], "crasher", timeout_s=60)
