"""Fault drills on writes: a checkpoint write that fails halfway."""
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gnndist.launch.cli import main
from gnndist.runtime.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow  # real processes with resource limits and signals

GNNDIST = str(Path(sys.executable).with_name("gnndist"))
SINGLE = ["mode=single", "dataset.num_nodes=300", "dataset.feature_dim=64", "model.hidden=64", "train.num_threads=1", "--no-progress"]


def limit_file_size(limit: int):
    """A preexec_fn: files larger than ``limit`` bytes fail to write (EFBIG) instead of killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_checkpoint_write_that_fails_halfway_keeps_the_previous_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *SINGLE, "train.epochs=2", "checkpoint.every=2", f"output.dir={out}"]) == 0
    size = (out / "checkpoints" / "ckpt-000002" / "shared.pt").stat().st_size
    result = subprocess.run(
        [GNNDIST, "train", "--resume", str(out), "train.epochs=4", "--no-progress"],
        capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size(size // 2),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "File too large" in result.stderr
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["ckpt-000002"]  # no half-written folder beside it
    read_checkpoint(out / "checkpoints" / "ckpt-000002")  # verifies every checksum
    assert main(["train", "--resume", str(out), "train.epochs=4", "--no-progress"]) == 0  # and resuming from it works
