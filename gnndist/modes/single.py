"""``mode=single``: full-graph training of the whole graph in this process (the reference)."""
from __future__ import annotations

from gnndist.device import resolve_device
from gnndist.modes.base import JobData, Mode
from gnndist.train.single import SingleProcessTrainer


class SingleMode(Mode):
    """One process, the whole graph: the oracle every distributed mode is tested against (also of heterogeneous graphs)."""

    name = "single"
    tasks = ("node", "link")
    heterogeneous = True

    def start(self, group, data: JobData) -> SingleProcessTrainer:
        return SingleProcessTrainer(data.graph, data.spec, resolve_device(data.config.train.device), data.task, data.targets)
