"""``mode=minibatch``: one Ray worker per part sampling around its own seeds, remote features from stores."""
from __future__ import annotations

from gnndist.hetero import HeteroGraph
from gnndist.modes.base import JobData, Mode
from gnndist.sampling.hetero import relation_fanouts
from gnndist.train.driver import GroupTrainer
from gnndist.train.fullgraph import PartSource
from gnndist.train.minibatch import HeteroMiniBatchWorkerTrainer, start_minibatch

HETERO_CACHES = ("none", "degree", "lru")
"""Cache policies that train heterogeneous graphs (``presample`` estimates with homogeneous fanouts)."""


class MiniBatchMode(Mode):
    """Neighbour-sampled mini-batches per worker (``train.fanouts``, ``train.batch_size``), features of remote
    nodes from their owners' stores through the ``cache`` policy.

    A heterogeneous graph (node classification) is partitioned as its homogeneous view; the driver builds every
    typed part again with as many halo rings as the model has layers and padded feature rows
    (:func:`~gnndist.partition.hetero.minibatch_parts`) and hands it to its worker and store through the Ray
    object store. ``train.fanouts`` is a list per hop (per relation and destination) or a mapping relation
    name -> list per hop.
    """

    name = "minibatch"
    partitioned = True
    distributed = True
    tasks = ("node", "link")
    heterogeneous = True

    @classmethod
    def check_heterogeneous(cls, config, schema) -> None:
        """Refuses the cache policies that do not yet train heterogeneous graphs, and ``train.fanouts`` naming
        relations the graph lacks (or not all of them)."""
        if config.cache.policy not in HETERO_CACHES:
            raise ValueError(f"dataset.name={config.dataset.name!r} is a heterogeneous graph: cache.policy={config.cache.policy!r} is not yet supported for heterogeneous graphs (cache.policy: {', '.join(HETERO_CACHES)})")
        relation_fanouts(config.train.fanouts, schema.edge_types, config.model.layers)

    def start(self, group, data: JobData) -> GroupTrainer:
        config = data.config
        if data.chunked is None and isinstance(data.graph, HeteroGraph):
            return start_minibatch(group, hetero_minibatch_sources(data), data.spec, config.train, config.cache, sampling=config.sampling, task=data.task, targets=data.targets, worker=HeteroMiniBatchWorkerTrainer)
        if isinstance(config.train.fanouts, dict):
            raise ValueError(f"train.fanouts={config.train.fanouts} is a mapping per relation, but dataset.name={config.dataset.name!r} is not a heterogeneous graph: give a list per hop")
        return start_minibatch(group, data.sources, data.spec, config.train, config.cache, sampling=config.sampling, task=data.task, targets=data.targets)


def hetero_minibatch_sources(data: JobData) -> list[PartSource]:
    """Every worker's typed part (built here from the partition of the view, with ``model.layers`` halo rings and
    padded features), put in the Ray object store with the partition book."""
    import ray

    from gnndist.partition import load_book
    from gnndist.partition.hetero import minibatch_parts

    config = data.config
    book = load_book(data.partition_dir)
    book_ref = ray.put(book)
    parts = minibatch_parts(data.graph, book, max(config.model.layers, config.partition.halo_hops))
    return [PartSource(part.part.part_id, object_ref=ray.put(part), book_ref=book_ref) for part in parts]
