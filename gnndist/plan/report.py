"""Plans as tables and JSON, the prediction a training run records in ``summary.json``, and predicted vs measured."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnndist.plan.model import Cluster, Prediction

if TYPE_CHECKING:
    from gnndist.config import JobConfig
    from gnndist.partition.quality import QualityReport
    from gnndist.plan.probe import BatchShape

NO_CALIBRATION = "no calibration configured: set plan.calibration=FILE (measure one with `gnndist plan CONFIG --calibration FILE`)"


@dataclass(frozen=True)
class PlanRow:
    """One planned configuration: the partitioner, the cluster and the prediction."""

    partitioner: str
    cluster: str
    prediction: Prediction

    def to_dict(self) -> dict[str, Any]:
        return {"partitioner": self.partitioner, "cluster": self.cluster, **self.prediction.to_dict()}


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def _gib(value: float) -> str:
    return f"{value / 2**30:,.2f}"


def plan_table(rows: list[PlanRow]) -> str:
    """One line per planned configuration: epoch, compute and communication seconds, MiB per epoch, peak GiB per worker."""
    header = ["P", "mode", "strategy", "partitioner", "cluster", "epoch s", "compute s", "comm s", "halo/remote MiB", "grad MiB", "peak GiB/worker"]
    cells = [
        [str(r.prediction.num_parts), r.prediction.mode, r.prediction.strategy, r.partitioner, r.cluster, f"{r.prediction.epoch_s:.3f}", f"{r.prediction.compute_s:.3f}",
         f"{r.prediction.comm_s:.3f}", _mib(r.prediction.halo_bytes), _mib(r.prediction.grad_bytes), _gib(r.prediction.peak_worker_bytes)]
        for r in rows
    ]
    widths = [max(len(header[i]), *(len(row[i]) for row in cells)) for i in range(len(header))]
    line = lambda row: "  ".join(cell.rjust(width) if i >= 5 or i == 0 else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([line(header), *(line(row) for row in cells)])


def run_cluster(config: "JobConfig") -> Cluster:
    """The cluster a training run runs on: an embedded Ray puts every worker on this machine, each with
    ``train.num_threads`` threads (default: the machine's cores shared out, as :func:`gnndist.launch.job.start_workers` does);
    on a Ray cluster the planner assumes one machine per worker, which it cannot see, so it plans loopback rates."""
    cores = os.cpu_count() or 1
    workers = config.partition.parts
    threads = config.train.num_threads or max(1, cores // workers)
    return Cluster(same_machine=True, cores_per_worker=threads, machine_cores=cores)


def plan_for_run(config: "JobConfig", quality: "QualityReport | None", features: int, classes: int, batches: "list[BatchShape] | None" = None) -> dict[str, Any] | None:
    """The prediction a run records as ``summary.json`` key ``plan``, or None (with the reason printed).

    Needs ``plan.calibration`` (an existing file: a run never pays a calibration) and the quality report of
    the run's partition (full-graph and mini-batch runs); the prediction is for this run's P, strategy, partition and threads,
    and ``batches`` (mini-batch runs on a graph in memory) are its parts' measured batch shapes.
    A missing, corrupted or mismatched calibration file is a warning naming the file and key, not a failed run.
    """
    from gnndist.plan.calibration import CalibrationError, calibration_key, load_calibration
    from gnndist.plan.model import predict
    from gnndist.plan.workload import from_quality

    path = config.plan.calibration
    if path is None:
        print(f"Plan: none ({NO_CALIBRATION})")
        return None
    if quality is None or config.mode not in ("fullgraph", "minibatch"):
        print(f"Plan: none (mode={config.mode} has no partition to plan)")
        return None
    key = calibration_key(config.model.name, config.model.hidden, config.model.layers, config.aggregation.name, config.cluster.release_memory)
    try:
        calibration = load_calibration(Path(path), key)
    except (CalibrationError, FileNotFoundError) as error:  # the run's results matter more than its plan: warn, keep them
        print(f"gnndist: warning: no plan: {error}", file=sys.stderr)
        return None
    workload = from_quality(config, quality, features, classes, mode=config.mode, strategy=config.comm.strategy if config.mode == "fullgraph" else "sync", strategy_options=config.comm.options, batches=batches)
    cluster = run_cluster(config)
    prediction = predict(workload, calibration, cluster)
    return {"calibration": str(path), "cluster": cluster.describe(), **prediction.to_dict()}


def measured_of(summary: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, float | None]:
    """What a run measured, comparable with its plan: median epoch seconds, median bytes per epoch, largest worker peak."""
    def median(key: str) -> float | None:
        values = sorted(r[key] for r in records if r.get(key) is not None)
        return values[len(values) // 2] if values else None

    peaks = [n for n in (summary.get("memory") or {}).get("worker_peak_bytes") or [] if n is not None]
    return {"epoch_s": median("epoch_time_s"), "halo_bytes": median("bytes_sent"), "peak_worker_bytes": max(peaks) if peaks else None}


def comparison_rows(plan: dict[str, Any], measured: dict[str, float | None]) -> list[tuple[str, str, str, str]]:
    """(what, predicted, measured, error %) for epoch time, bytes per epoch and peak worker memory."""
    rows = []
    for key, name, show in (("epoch_s", "epoch time (s)", lambda v: f"{v:.3f}"), ("halo_bytes", "bytes per epoch (MiB)", _mib), ("peak_worker_bytes", "peak worker memory (GiB)", _gib)):
        predicted, actual = plan.get(key), measured.get(key)
        error = "-" if predicted is None or not actual else f"{100 * (predicted - actual) / actual:+.0f} %"
        rows.append((name, "-" if predicted is None else show(predicted), "-" if actual is None else show(actual), error))
    return rows


def comparison_table(plan: dict[str, Any] | None, measured: dict[str, float | None]) -> str:
    """Predicted vs measured, as ``gnndist report`` prints it."""
    if plan is None:
        return f"Plan: none ({NO_CALIBRATION})"
    rows = [("", "predicted", "measured", "error"), *comparison_rows(plan, measured)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"Plan (calibration {plan['calibration']}; {plan['cluster']})"]
    lines += ["  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    return "\n".join(lines)


def plan_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary table's line for a run's plan: predicted epoch time, bytes and peak worker memory."""
    plan = summary.get("plan")
    if plan is None:
        return [("plan", "none: set plan.calibration=FILE")] if "plan" in summary else []
    return [("plan (predicted)", f"epoch {plan['epoch_s'] * 1000:.1f} ms, {_mib(plan['halo_bytes'])} MiB/epoch, worker peak {_gib(plan['peak_worker_bytes'])} GiB")]
