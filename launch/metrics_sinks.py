"""Where per-epoch metrics go besides ``metrics.jsonl``: TensorBoard event files (``output.tensorboard``)."""
from __future__ import annotations

from pathlib import Path

from gnndist.train.metrics import EpochMetrics


class TensorBoardSink:
    """Writes every numeric field of each epoch as a scalar (step = epoch) to ``log_dir``.

    Args:
        log_dir: the event folder (``<output.dir>/tensorboard``); view with ``tensorboard --logdir``.
        start_epoch: when resuming, events of epochs ``>= start_epoch`` written before are dropped.
    """

    def __init__(self, log_dir: str | Path, *, start_epoch: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(f"output.tensorboard=true needs the tensorboard package ({error}); pip install tensorboard") from None
        self.writer = SummaryWriter(str(log_dir), purge_step=start_epoch or None)

    def __call__(self, metrics: EpochMetrics) -> None:
        for key, value in metrics.to_dict().items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, metrics.epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
