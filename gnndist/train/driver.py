"""The driver side of every distributed mode: a group of workers trained epoch by epoch."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from torch import Tensor

from gnndist.train.metrics import EpochMetrics

if TYPE_CHECKING:
    from gnndist.store import StoreSet


class GroupTrainer:
    """Driver side of a distributed mode: one epoch = one ``train_epoch`` call on every worker of the group.

    Args:
        group: the workers, each hosting a worker trainer (``setup`` done).
        combine: the workers' results of one epoch -> :class:`EpochMetrics` (the mode's own combination).
        stores: the mini-batch stores this trainer started (``gnndist.store.StoreSet``): replaced before the
            workers are rebuilt when one stayed dead, stopped with the trainer.
    """

    def __init__(self, group, combine: Callable[[int, list[dict[str, Any]]], EpochMetrics], stores: "StoreSet | None" = None):
        self.group, self.combine, self.stores = group, combine, stores

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics:
        """One epoch on every worker, combined; with stores, their CPU seconds during it (``store_cpu_s``)."""
        before = self.stores.cpu_seconds() if self.stores is not None else None
        metrics = self.combine(epoch, self.group.run("train_epoch", epoch, evaluate))
        if before is not None:
            metrics.extra["store_cpu_s"] = self.stores.cpu_seconds() - before
        return metrics

    def parameters_vector(self) -> Tensor:
        return self.group.run_one(0, "parameters_vector")

    def state_dicts(self) -> list[dict[str, Any]]:
        """Every worker's state, by rank (for checkpoints)."""
        return self.group.run("state_dict")

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        if len(states) != self.group.num_workers:
            raise ValueError(f"Expected one state per worker ({self.group.num_workers}), got {len(states)}")
        self.group.run_each("load_state_dict", [(state,) for state in states])

    def recover(self, failure) -> float:
        """Restarts failed workers and rebuilds every worker's trainer (see ``WorkerGroup.recover``)."""
        if self.stores is not None and self.stores.revive():
            self.group.update_setup(stores=self.stores.handles)
        return self.group.recover(failure)

    def memory(self) -> dict[str, Any]:
        """Peak resident memory of every worker and store process, by rank."""
        peaks = {"worker_peak_bytes": self.group.peak_bytes()}
        if self.stores is not None:
            peaks["store_peak_bytes"] = self.stores.peak_bytes()
        return peaks

    def shutdown(self) -> None:
        if self.stores is not None:
            self.stores.stop()
            self.stores = None
