"""Bad input and faults met through `gnndist train` on a real local Ray: the real error, fast, named."""
import time

import numpy as np
import pytest

from gnndist.config import load_config
from gnndist.launch.job import run_job
from gnndist.runtime.failures import WorkerError

JOB = ["mode=fullgraph", "dataset.num_nodes=300", "dataset.feature_dim=8", "model.hidden=8", "train.epochs=2", "train.num_threads=1", "partition.parts=2"]


def test_a_corrupted_part_file_is_named_at_once(ray_session, tmp_path):
    """One flipped byte in rank 1's part file: rank 1's checksum error is the error (not rank 0's collective timeout)."""
    parts = tmp_path / "parts"
    run_job(load_config(None, [*JOB, f"partition.dir={parts}", f"output.dir={tmp_path / 'first'}"]), progress=False)
    path = parts / "part-00001" / "part.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.raises(WorkerError) as info:
        run_job(load_config(None, [*JOB, f"partition.dir={parts}", f"output.dir={tmp_path / 'second'}", "cluster.timeout_s=60"]), progress=False)
    elapsed = time.perf_counter() - start
    assert str(info.value).startswith(f"worker rank 1 raised ValueError during 'setup': Checksum mismatch for {path}: expected sha256")
    assert elapsed < 60, f"took {elapsed:.0f} s: the error waited for a timeout"
    assert not (tmp_path / "second").exists()  # failed before its first epoch: no run directory left


def test_a_label_outside_the_classes_in_a_training_node_is_named_before_any_worker_starts(tmp_path):
    graph = tmp_path / "labels.npz"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 60)
    y[7] = -1
    train_mask = np.zeros(60, dtype=bool)
    train_mask[:30] = True
    np.savez(graph, edge_index=rng.integers(0, 60, (2, 240)), x=rng.normal(size=(60, 4)).astype(np.float32), y=y, train_mask=train_mask)
    with pytest.raises(ValueError, match=f"{graph}: Label 'y' of node 7 \\(in 'train_mask'\\) is -1; expected \\[0, num_classes\\)"):
        run_job(load_config(None, ["mode=fullgraph", f"dataset.name=npz:{graph}", "model.hidden=8", "partition.parts=2", f"output.dir={tmp_path / 'run'}"]), progress=False)
    assert not (tmp_path / "run").exists()
