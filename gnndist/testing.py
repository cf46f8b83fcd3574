"""Test helpers shipped with gnndist: the single-process oracle distributed modes are checked against."""
from __future__ import annotations

import torch
from torch import Tensor

from gnndist.graph import Graph
from gnndist.models import ModelSpec
from gnndist.train.loop import EpochTrainer, fit
from gnndist.train.single import SingleProcessTrainer


def reference_run(graph: Graph, spec: ModelSpec, epochs: int) -> tuple[list[float], Tensor]:
    """Per-epoch losses and final flat parameters of single-process full-graph training."""
    trainer = SingleProcessTrainer(graph, spec)
    losses = [m.loss for m in fit(trainer, epochs, eval_every=epochs, progress=False).history]
    return losses, trainer.parameters_vector()


def assert_matches_single_process(graph: Graph, spec: ModelSpec, trainer: EpochTrainer, epochs: int, *, rtol: float = 1e-4, atol: float = 1e-4) -> list[float]:
    """Trains ``trainer`` for ``epochs`` and asserts its losses and final parameters equal the reference's.

    ``spec.dropout`` must be 0: dropout masks cannot match across different row layouts.
    """
    if spec.dropout != 0:
        raise ValueError("The single-process oracle needs dropout=0 (masks differ between layouts)")
    expected_losses, expected_params = reference_run(graph, spec, epochs)
    losses = [m.loss for m in fit(trainer, epochs, eval_every=epochs, progress=False).history]
    for epoch, (got, want) in enumerate(zip(losses, expected_losses)):
        assert abs(got - want) <= rtol * abs(want), f"epoch {epoch}: loss {got} != reference {want} (rtol {rtol})"
    params = trainer.parameters_vector()
    assert torch.allclose(params, expected_params, rtol=rtol, atol=atol), f"final parameters differ by up to {float((params - expected_params).abs().max()):.3g}"
    return losses
