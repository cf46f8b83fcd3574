"""``mode=fullgraph``: one Ray worker per part, per-layer halo exchange by the configured strategy."""
from __future__ import annotations

from gnndist.modes.base import JobData, Mode
from gnndist.train.driver import GroupTrainer
from gnndist.train.fullgraph import start_fullgraph


class FullGraphMode(Mode):
    """Every worker trains its part on the whole-part block; ``comm.strategy`` moves the halo rows."""

    name = "fullgraph"
    partitioned = True
    distributed = True
    tasks = ("node", "link")

    def start(self, group, data: JobData) -> GroupTrainer:
        comm = data.config.comm
        return start_fullgraph(group, data.sources, data.spec, comm.strategy, comm.options, data.task, data.targets)
