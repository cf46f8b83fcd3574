"""``mode=local``: every part in this process, exchanged by gathers (no Ray): dry runs of a partitioning."""
from __future__ import annotations

from gnndist.device import resolve_device
from gnndist.modes.base import JobData, Mode
from gnndist.partition import load_part
from gnndist.train.fullgraph import LocalFullGraphTrainer


class LocalMode(Mode):
    """Full-graph training over the parts of a partition, all in one process; exact like ``sync``."""

    name = "local"
    partitioned = True

    def start(self, group, data: JobData) -> LocalFullGraphTrainer:
        parts = [load_part(data.partition_dir, rank) for rank in range(data.config.partition.parts)]
        return LocalFullGraphTrainer(parts, data.spec, resolve_device(data.config.train.device))
