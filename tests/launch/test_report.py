"""`gnndist report RUN`: its output into a pipe whose reader stops early (`| head`) is not an error."""
import io
import os
import sys

from gnndist.launch.cli import main
from gnndist.launch.rundir import RunDirectory
from gnndist.train.metrics import EpochMetrics


def test_report_into_a_closed_pipe_exits_zero(tmp_path, monkeypatch, capsys):
    run_dir = RunDirectory(tmp_path / "run")
    for epoch in range(2000):  # a table far larger than the pipe's and the text layer's buffers
        run_dir.log_epoch(EpochMetrics(epoch, loss=1.0 / (epoch + 1), epoch_time_s=0.01, val_acc=0.5))
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` has read its lines and gone
    pipe = io.TextIOWrapper(os.fdopen(write_end, "wb"))
    monkeypatch.setattr(sys, "stdout", pipe)
    assert main(["report", str(run_dir.path), "--no-plot"]) == 0
    pipe.close()  # what the interpreter does at exit: must not fail again
    assert capsys.readouterr().err == ""

