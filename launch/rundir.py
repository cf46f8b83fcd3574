"""The run directory: resolved config, per-epoch JSON lines and the final summary."""
from __future__ import annotations

import json
import time
from pathlib import Path

from gnndist.config import JobConfig
from gnndist.io import append_line, atomic_path, write_json
from gnndist.train.metrics import EpochMetrics


class RunDirectory:
    """Owns ``output.dir``: refuses to reuse a directory with results unless ``force`` (or resuming)."""

    def __init__(self, path: str | Path | None, *, force: bool = False, resume: bool = False):
        self.path = Path(path) if path is not None else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        if self.metrics_path.exists() and not (force or resume):
            raise FileExistsError(f"Run directory {self.path} already holds results ({self.metrics_path.name}); pass --force to overwrite or --resume to continue")
        self.path.mkdir(parents=True, exist_ok=True)
        if force and not resume:
            for name in ("metrics.jsonl", "summary.json", "recoveries.jsonl"):
                (self.path / name).unlink(missing_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_config(self, config: JobConfig) -> None:
        with open(self.path / "config.yaml", "w") as file:
            file.write(config.to_yaml())

    def log_epoch(self, metrics: EpochMetrics) -> None:
        append_line(self.metrics_path, json.dumps(metrics.to_dict()))

    def read_metrics(self) -> list[EpochMetrics]:
        """The epochs logged so far (a torn last line, from a crash mid-write, is ignored)."""
        if not self.metrics_path.exists():
            return []
        history = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                history.append(EpochMetrics.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                break
        return history

    def truncate_metrics(self, epochs: int) -> list[EpochMetrics]:
        """Keeps the logged epochs ``< epochs`` (training went back to a checkpoint) and returns them."""
        kept = [m for m in self.read_metrics() if m.epoch < epochs]
        with atomic_path(self.metrics_path) as tmp:
            tmp.write_text("".join(json.dumps(m.to_dict()) + "\n" for m in kept))
        return kept

    def write_workers(self, workers: list[dict]) -> None:
        """Where each worker runs (rank, node_id, ip, pid), rewritten after a recovery."""
        write_json(self.path / "workers.json", workers)

    def log_recovery(self, event: dict) -> None:
        append_line(self.path / "recoveries.jsonl", json.dumps(event))

    def write_summary(self, summary: dict) -> Path:
        path = self.path / "summary.json"
        write_json(path, summary)
        return path
