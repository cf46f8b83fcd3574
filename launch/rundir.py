"""The run directory: resolved config, per-epoch JSON lines and the final summary."""
from __future__ import annotations

import json
import time
from pathlib import Path

from gnndist.config import JobConfig
from gnndist.io import append_line, write_json
from gnndist.train.metrics import EpochMetrics


class RunDirectory:
    """Owns ``output.dir``: refuses to reuse a directory with results unless ``force`` (or resuming)."""

    def __init__(self, path: str | Path | None, *, force: bool = False, resume: bool = False):
        self.path = Path(path) if path is not None else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        if self.metrics_path.exists() and not (force or resume):
            raise FileExistsError(f"Run directory {self.path} already holds results ({self.metrics_path.name}); pass --force to overwrite or --resume to continue")
        self.path.mkdir(parents=True, exist_ok=True)
        if force and not resume:
            for name in ("metrics.jsonl", "summary.json"):
                (self.path / name).unlink(missing_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_config(self, config: JobConfig) -> None:
        with open(self.path / "config.yaml", "w") as file:
            file.write(config.to_yaml())

    def log_epoch(self, metrics: EpochMetrics) -> None:
        append_line(self.metrics_path, json.dumps(metrics.to_dict()))

    def write_summary(self, summary: dict) -> Path:
        path = self.path / "summary.json"
        write_json(path, summary)
        return path
