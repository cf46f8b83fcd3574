"""gnndist's single-process full-graph contender in its own process (``python -m gnndist.benchmarks.gnndist_child SPEC``).

Answers the requests of :class:`~gnndist.benchmarks.child.ChildProcess`: ``epoch`` (one training
epoch of :class:`~gnndist.train.single.SingleProcessTrainer` on ``spec["device"]``), ``evaluate``,
``cuda_peak`` (the allocator's peak on the GPU; None on the CPU), ``breakdown`` (one epoch under
``torch.profiler``, by category: where gnndist's time goes; CPU only) and ``dropout`` (torch's
``F.dropout`` against gnndist's). Its own process, so that its peak memory is its own.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from gnndist.benchmarks.child import serve
from gnndist.benchmarks.timing import run_timed
from gnndist.memory import peak_cuda_bytes

BREAKDOWN_CATEGORIES = ("aggregation forward", "aggregation backward", "linear forward", "linear backward", "dropout + relu forward", "dropout + relu backward", "loss", "optimizer", "other")


class GnndistContender:
    """gnndist at P=1: the single-process trainer over the whole graph of ``spec["npz"]``."""

    def __init__(self, spec: dict[str, Any]):
        from gnndist.device import resolve_device
        from gnndist.graph import Graph
        from gnndist.models import ModelSpec
        from gnndist.train.single import SingleProcessTrainer

        self.spec = spec
        with np.load(spec["npz"], allow_pickle=False) as data:
            arrays = {key: torch.from_numpy(data[key]) for key in data.files}
        graph = Graph(arrays["indptr"], arrays["indices"], x=arrays["x"], y=arrays["y"], train_mask=arrays["train_mask"], val_mask=arrays["val_mask"], test_mask=arrays["test_mask"])
        model_spec = ModelSpec(
            name=spec["model"], num_features=graph.num_features, num_classes=graph.num_classes, hidden=spec["hidden"], layers=2, dropout=spec["dropout"],
            aggregation=spec["variant"], lr=spec["lr"], weight_decay=spec["weight_decay"], seed=spec["seed"],
        )
        self.device = resolve_device(spec["device"], key="--devices")
        self.trainer = SingleProcessTrainer(graph, model_spec, self.device)

    def epoch(self, epoch: int) -> dict[str, float]:
        metrics, seconds, cpu_seconds = run_timed(lambda: self.trainer.train_epoch(epoch, evaluate=False), self.device)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "loss": metrics.loss}

    def cuda_peak(self) -> dict[str, int | None]:
        return {"bytes": peak_cuda_bytes(self.device) if self.device.type == "cuda" else None}

    def evaluate(self) -> dict[str, float | None]:
        return self.trainer.evaluate().values

    def breakdown(self, epoch: int) -> dict[str, Any]:
        return profile_breakdown(self.trainer, epoch)

    def dropout(self) -> dict[str, float]:
        return dropout_timing(self.trainer.graph.num_nodes, self.spec["hidden"], self.spec["dropout"])


class _Ranged:
    """Calls ``inner`` inside a named profiler range, so the profiler sees the whole call as one."""

    def __init__(self, name: str, inner: Callable):
        self.name, self.inner = name, inner

    def __call__(self, *args, **kwargs):
        from torch.profiler import record_function

        with record_function(self.name):
            return self.inner(*args, **kwargs)


def _category(chain: list[str]) -> str | None:
    """The category of a profiler event from its name and its ancestors' names (innermost first)."""
    joined = " | ".join(chain)
    if "Optimizer." in joined:
        return "optimizer"
    if "gnndist.aggregation" in joined:
        return "aggregation forward"
    backward = "autograd::engine::evaluate_function" in joined or "Backward" in joined
    if "gnndist.dropout" in joined and not backward:
        return "dropout + relu forward"
    for name in chain:
        if "Native" in name or "Sparse" in name or "_sparse" in name:
            return "aggregation backward" if backward else "aggregation forward"
        if "Dropout" in name or "Threshold" in name or "Relu" in name or name in ("aten::relu_", "aten::relu", "MulBackward0"):
            return "dropout + relu backward" if backward else "dropout + relu forward"
        if name in ("aten::addmm", "aten::addmm_", "aten::mm", "aten::linear") or name.startswith(("AddmmBackward", "MmBackward", "TBackward")):
            return "linear backward" if backward else "linear forward"
        if "nll_loss" in name or "log_softmax" in name or "cross_entropy" in name or "NllLoss" in name or "LogSoftmax" in name:
            return "loss"
    return None


def profile_breakdown(trainer, epoch: int) -> dict[str, Any]:
    """One training epoch of ``trainer`` (a SingleProcessTrainer) under ``torch.profiler``, by category.

    Self CPU time of every operator goes to the category of the nearest enclosing range that has one
    (aggregation: the backend call and its autograd node; linear: matmuls; dropout + ReLU; loss;
    optimizer; other: indexing, bias adds, the autograd engine). The profiler slows small operators,
    so read the shares, and the total only as an upper bound.
    """
    from torch.profiler import ProfilerActivity, profile

    import gnndist.models.gnn as gnn

    model = trainer.model
    # name the model's aggregation and dropout calls for the profiler during this one epoch
    originals = model.aggregation, gnn.dropout, gnn.relu_dropout
    model.aggregation = _Ranged("gnndist.aggregation", originals[0])
    gnn.dropout, gnn.relu_dropout = _Ranged("gnndist.dropout", originals[1]), _Ranged("gnndist.dropout", originals[2])
    try:
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train_epoch(epoch, evaluate=False)
        wall = time.perf_counter() - start
    finally:
        model.aggregation, gnn.dropout, gnn.relu_dropout = originals
    seconds = dict.fromkeys(BREAKDOWN_CATEGORIES, 0.0)
    for event in prof.events():
        chain, parent = [], event
        while parent is not None:
            chain.append(parent.name)
            parent = parent.cpu_parent
        seconds[_category(chain) or "other"] += event.self_cpu_time_total / 1e6
    total = sum(seconds.values())
    return {"profiled_epoch_s": wall, "seconds": seconds, "share": {k: v / total if total else 0.0 for k, v in seconds.items()}}


def dropout_timing(num_rows: int, width: int, p: float, repeats: int = 3) -> dict[str, float]:
    """Median seconds of torch's ``F.dropout`` and gnndist's dropout on a ``[num_rows, width]`` tensor,
    forward alone and ReLU + dropout forward + backward (what a hidden layer pays)."""
    from gnndist.benchmarks.timing import median_seconds
    from gnndist.models.dropout import dropout, relu_dropout

    x = torch.randn(num_rows, width)

    def with_backward(fn):
        def run():
            h = x.clone().requires_grad_()
            fn(h).backward(x)

        return run

    return {
        "rows": num_rows,
        "width": width,
        "torch_dropout_forward_s": median_seconds(lambda: F.dropout(x, p, True), repeats),
        "gnndist_dropout_forward_s": median_seconds(lambda: dropout(x, p, True), repeats),
        "torch_relu_dropout_train_s": median_seconds(with_backward(lambda h: F.dropout(F.relu(h), p, True)), repeats),
        "gnndist_relu_dropout_train_s": median_seconds(with_backward(lambda h: relu_dropout(h, p, True)), repeats),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    torch.set_num_threads(spec["threads"])
    contender = GnndistContender(spec)
    import gnndist

    handlers = {"epoch": contender.epoch, "evaluate": contender.evaluate, "cuda_peak": contender.cuda_peak, "breakdown": contender.breakdown, "dropout": contender.dropout}
    serve({"version": f"gnndist {gnndist.__version__}", "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(contender.device)}, handlers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
