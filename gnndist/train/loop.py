"""The epoch loop every mode shares: progress bar (or one line per epoch), per-epoch sinks, best-model tracking."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from tqdm import tqdm

from gnndist.train.metrics import EpochMetrics


class EpochTrainer(Protocol):
    """Anything that trains one epoch and reports it: a local trainer or a driver for remote workers."""

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics: ...


@dataclass
class FitResult:
    """Epochs trained so far and the best one by ``val_<headline>`` (the task's headline metric: ``acc``
    for node classification, ``auc`` for link prediction)."""

    history: list[EpochMetrics] = field(default_factory=list)
    headline: str = "acc"
    best_epoch: int | None = None
    best_val: float | None = None
    test_at_best_val: float | None = None
    wall_time_s: float = 0.0

    @property
    def final(self) -> EpochMetrics:
        return self.history[-1]

    def record(self, metrics: EpochMetrics) -> None:
        """Appends one epoch and updates the best validation value of the headline metric."""
        self.history.append(metrics)
        val = metrics.get(f"val_{self.headline}")
        if val is not None and (self.best_val is None or val > self.best_val):
            self.best_epoch, self.best_val, self.test_at_best_val = metrics.epoch, val, metrics.get(f"test_{self.headline}")

    def truncate(self, epochs: int) -> None:
        """Forgets epochs ``>= epochs`` (training goes back to a checkpoint) and recomputes the best."""
        kept = [m for m in self.history if m.epoch < epochs]
        self.history, self.best_epoch, self.best_val, self.test_at_best_val = [], None, None, None
        for metrics in kept:
            self.record(metrics)


def fit(
    trainer: EpochTrainer,
    epochs: int,
    *,
    start_epoch: int = 0,
    eval_every: int = 1,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    progress: bool = True,
    description: str = "train",
    result: FitResult | None = None,
) -> FitResult:
    """Trains epochs ``start_epoch..epochs-1``; evaluates every ``eval_every`` epochs and at the last.

    With ``progress``, a terminal shows a progress bar; anywhere else (a log file, a pipe, a CI job)
    each epoch prints one plain line to stdout instead, since a bar's redraws would be noise there.
    ``result`` continues an earlier result (epochs before ``start_epoch``, e.g. read back when resuming).
    """
    result = result if result is not None else FitResult()
    start = time.perf_counter()
    show_bar = progress and sys.stdout.isatty() and sys.stderr.isatty()
    bar = tqdm(range(start_epoch, epochs), desc=description, unit="epoch", disable=not show_bar, dynamic_ncols=True, initial=start_epoch, total=epochs)
    for epoch in bar:
        evaluate = (epoch + 1) % eval_every == 0 or epoch == epochs - 1
        metrics = trainer.train_epoch(epoch, evaluate=evaluate)
        result.record(metrics)
        if show_bar:
            bar.set_postfix(_progress_fields(metrics, result.headline))
        elif progress:
            fields = "  ".join(f"{name} {value}" for name, value in _progress_fields(metrics, result.headline).items())
            print(f"{description} epoch {epoch + 1}/{epochs}  {fields}  {metrics.epoch_time_s:.2f} s", flush=True)
        if on_epoch is not None:
            on_epoch(metrics)
    bar.close()
    result.wall_time_s += time.perf_counter() - start
    return result


def _progress_fields(metrics: EpochMetrics, headline: str) -> dict[str, str]:
    fields = {"loss": f"{metrics.loss:.4f}"}
    val = metrics.get(f"val_{headline}")
    if val is not None:
        fields["val" if headline == "acc" else f"val {headline}"] = f"{val:.3f}"
    return fields
