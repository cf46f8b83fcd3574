"""Per-epoch metrics: one typed record every trainer returns and every sink writes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor

Masks = tuple[Tensor | None, Tensor | None, Tensor | None]
"""The train, val and test masks of the rows a trainer evaluates (None: no such split)."""


def node_loss(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy for single-label ``y``, binary cross-entropy for multi-label (float) ``y``."""
    if y.is_floating_point():
        return F.binary_cross_entropy_with_logits(logits, y, reduction=reduction)
    return F.cross_entropy(logits, y, reduction=reduction)


@dataclass
class EpochMetrics:
    """What one epoch produced. ``extra`` holds mode- and task-specific numbers (time splits, cache hit rate,
    link prediction's ``val_auc``, ``test_hits@50``, ...)."""

    epoch: int
    loss: float
    epoch_time_s: float
    train_acc: float | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    bytes_sent: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float | int | None]:
        record = asdict(self)
        record.update(record.pop("extra"))
        return {k: v for k, v in record.items() if v is not None}

    @classmethod
    def from_dict(cls, record: dict[str, float | int]) -> "EpochMetrics":
        """The inverse of :meth:`to_dict` (a line of ``metrics.jsonl``)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in record.items() if k in names}, extra={k: v for k, v in record.items() if k not in names})

    def get(self, name: str) -> float | None:
        """The value of metric ``name``: a field (``val_acc``) or a key of ``extra`` (``val_auc``); None when absent."""
        if name != "extra" and hasattr(self, name):
            return getattr(self, name)
        return self.extra.get(name)


@dataclass
class SplitCounts:
    """Correct predictions and totals per split; sums across workers before dividing."""

    correct: Tensor  # [3] train, val, test
    total: Tensor  # [3]

    @classmethod
    def of(cls, logits: Tensor, y: Tensor, masks: Masks) -> "SplitCounts":
        """Counted on the logits' device (the sums are all-reduced there)."""
        predicted = logits.argmax(dim=-1)
        correct, total = (torch.zeros(3, dtype=torch.float64, device=logits.device) for _ in range(2))
        for i, mask in enumerate(masks):
            if mask is not None:
                correct[i] = (predicted[mask] == y[mask]).sum()
                total[i] = mask.sum()
        return cls(correct, total)

    def summed(self, comm) -> "SplitCounts":
        """The counts summed over the workers of ``comm`` (one all-reduce)."""
        stacked = comm.all_reduce_sum(torch.stack([self.correct, self.total]))
        return SplitCounts(stacked[0], stacked[1])

    def accuracies(self) -> tuple[float | None, float | None, float | None]:
        return tuple(float(c / t) if t > 0 else None for c, t in zip(self.correct, self.total))  # type: ignore[return-value]
