"""The driver side of every distributed mode: a group of workers trained epoch by epoch."""
from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from gnndist.train.metrics import EpochMetrics


class GroupTrainer:
    """Driver side of a distributed mode: one epoch = one ``train_epoch`` call on every worker of the group.

    Args:
        group: the workers, each hosting a worker trainer (``setup`` done).
        combine: the workers' results of one epoch -> :class:`EpochMetrics` (the mode's own combination).
        on_shutdown: what else to stop with the trainer (the mini-batch stores).
        before_recover: what else to bring back before the workers are rebuilt after a failure (the
            mini-batch stores).
    """

    def __init__(
        self,
        group,
        combine: Callable[[int, list[dict[str, Any]]], EpochMetrics],
        on_shutdown: Callable[[], None] | None = None,
        before_recover: Callable[[], None] | None = None,
    ):
        self.group, self.combine, self.on_shutdown, self.before_recover = group, combine, on_shutdown, before_recover

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics:
        return self.combine(epoch, self.group.run("train_epoch", epoch, evaluate))

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
        if self.before_recover is not None:
            self.before_recover()
        return self.group.recover(failure)

    def shutdown(self) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()
            self.on_shutdown = None
