"""``mode=minibatch``: one Ray worker per part sampling around its own seeds, remote features from stores."""
from __future__ import annotations

from gnndist.modes.base import JobData, Mode
from gnndist.train.driver import GroupTrainer
from gnndist.train.minibatch import start_minibatch


class MiniBatchMode(Mode):
    """Neighbour-sampled mini-batches per worker (``train.fanouts``, ``train.batch_size``), features of remote
    nodes from their owners' stores through the ``cache`` policy."""

    name = "minibatch"
    partitioned = True
    distributed = True
    tasks = ("node", "link")

    def start(self, group, data: JobData) -> GroupTrainer:
        return start_minibatch(group, data.sources, data.spec, data.config.train, data.config.cache, sampling=data.config.sampling, task=data.task, targets=data.targets)
