"""`gnndist train` on a heterogeneous dataset across modes: the full-graph job equals the single-process job.

(Its own module: the 3 workers the job starts need the session's CPUs that other modules' worker groups hold.)
"""
import json

import pytest

from gnndist.launch import cli

SMALL_HSBM = dict(num_papers=300, num_authors=150, num_institutions=16, num_fields=32, seed=0)


@pytest.mark.slow
def test_cli_fullgraph_on_hsbm_equals_the_single_process_run(tmp_path, ray_session):
    common = ["dataset.name=hsbm", *(f"dataset.{k}={v}" for k, v in SMALL_HSBM.items()), "model.name=rgcn", "model.dropout=0", "model.hidden=16", "train.epochs=3", "--no-progress"]
    assert cli.main(["train", *common, "mode=single", f"output.dir={tmp_path / 'single'}"]) == 0
    assert cli.main(["train", *common, "mode=fullgraph", "partition.parts=3", "cluster.workers=3", f"output.dir={tmp_path / 'fullgraph'}"]) == 0
    losses = {run: [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("single", "fullgraph")}
    assert losses["single"] == pytest.approx(losses["fullgraph"], rel=1e-4)


@pytest.mark.slow
def test_heterogeneous_fullgraph_run_resumes_exactly(tmp_path, ray_session):
    """A checkpointed heterogeneous run (``stale``: the strategy's pipelined halo rows are in the checkpoint)
    resumed to the end equals the run that went straight through."""
    common = ["dataset.name=hsbm", *(f"dataset.{k}={v}" for k, v in SMALL_HSBM.items()), "model.name=rgcn", "model.hidden=16", "mode=fullgraph", "partition.parts=3", "cluster.workers=3", "comm.strategy=stale", "--no-progress"]
    assert cli.main(["train", *common, "train.epochs=4", f"output.dir={tmp_path / 'straight'}"]) == 0
    assert cli.main(["train", *common, "train.epochs=2", "checkpoint.every=2", f"output.dir={tmp_path / 'resumed'}"]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "resumed"), "train.epochs=4", "--no-progress"]) == 0
    losses = {run: [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("straight", "resumed")}
    assert len(losses["resumed"]) == 4
    assert losses["resumed"] == pytest.approx(losses["straight"], rel=1e-6)
