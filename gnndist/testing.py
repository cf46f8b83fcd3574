"""Test helpers shipped with gnndist: the single-process oracle distributed modes are checked against, a
joined group of Ray workers to check them on, and a part source for workers built in-process."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor

from gnndist.graph import Graph
from gnndist.models import ModelSpec
from gnndist.partition import PartitionBook
from gnndist.train.loop import EpochTrainer, fit
from gnndist.train.single import SingleProcessTrainer


def reference_run(graph: Graph, spec: ModelSpec, epochs: int, device: torch.device | str = "cpu") -> tuple[list[float], Tensor]:
    """Per-epoch losses and final flat parameters (on the host) of single-process full-graph training on ``device``."""
    trainer = SingleProcessTrainer(graph, spec, device)
    losses = [m.loss for m in fit(trainer, epochs, eval_every=epochs, progress=False).history]
    return losses, trainer.parameters_vector().cpu()


def assert_matches_single_process(
    graph: Graph, spec: ModelSpec, trainer: EpochTrainer, epochs: int, *, rtol: float = 1e-4, atol: float = 1e-4, device: torch.device | str = "cpu"
) -> list[float]:
    """Trains ``trainer`` for ``epochs`` and asserts its losses and final parameters equal those of the
    reference on ``device``.

    ``spec.dropout`` must be 0: dropout masks cannot match across different row layouts.
    """
    if spec.dropout != 0:
        raise ValueError("The single-process oracle needs dropout=0 (masks differ between layouts)")
    expected_losses, expected_params = reference_run(graph, spec, epochs, device)
    losses = [m.loss for m in fit(trainer, epochs, eval_every=epochs, progress=False).history]
    for epoch, (got, want) in enumerate(zip(losses, expected_losses)):
        assert abs(got - want) <= rtol * abs(want), f"epoch {epoch}: loss {got} != reference {want} (rtol {rtol})"
    params = trainer.parameters_vector().cpu()
    assert torch.allclose(params, expected_params, rtol=rtol, atol=atol), f"final parameters differ by up to {float((params - expected_params).abs().max()):.3g}"
    return losses


@contextlib.contextmanager
def joined_group(num_workers: int, **options: Any) -> Iterator[Any]:
    """``num_workers`` Ray workers (``WorkerGroup(num_workers, cpus_per_worker=1, timeout_s=120, **options)``)
    joined in a torch.distributed group; shut down on exit. Ray must be running."""
    from gnndist.runtime import WorkerGroup

    group = WorkerGroup(num_workers, **{"cpus_per_worker": 1, "timeout_s": 120, **options})
    try:
        group.init_process_group()
        yield group
    finally:
        group.shutdown()


@dataclass(frozen=True)
class InMemoryPart:
    """A part source (``load``, ``load_book``) for a worker built in-process from a part in memory.

    Args:
        part: what ``load`` returns (a ``Part``, or a typed ``HeteroPart``).
        book: the partition book; None: a one-part partition (every node owned by part 0).
    """

    part: Any
    book: PartitionBook | None = None

    def load(self) -> Any:
        return self.part

    def load_book(self) -> PartitionBook:
        if self.book is not None:
            return self.book
        return PartitionBook.from_assignment(torch.zeros(self.part.num_owned, dtype=torch.long), 1)
