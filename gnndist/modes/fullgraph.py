"""``mode=fullgraph``: one Ray worker per part, per-layer halo exchange by the configured strategy."""
from __future__ import annotations

from gnndist.hetero import HeteroGraph
from gnndist.modes.base import JobData, Mode
from gnndist.train.driver import GroupTrainer
from gnndist.train.fullgraph import HeteroFullGraphWorkerTrainer, PartSource, start_fullgraph


class FullGraphMode(Mode):
    """Every worker trains its part on the whole-part block; ``comm.strategy`` moves the halo rows.

    A heterogeneous graph (``sync`` only, node classification) is partitioned as its homogeneous view; the driver
    types every part again (:class:`~gnndist.partition.hetero.HeteroPart`) and hands it to its worker through
    the Ray object store.
    """

    name = "fullgraph"
    partitioned = True
    distributed = True
    tasks = ("node", "link")
    heterogeneous = True

    @classmethod
    def check_heterogeneous(cls, config, schema) -> None:
        """Only the exact ``sync`` strategy trains heterogeneous parts so far."""
        if config.comm.strategy != "sync":
            raise ValueError(f"dataset.name={config.dataset.name!r} is a heterogeneous graph: comm.strategy={config.comm.strategy!r} is not yet supported for heterogeneous graphs (comm.strategy=sync is)")

    def start(self, group, data: JobData) -> GroupTrainer:
        comm = data.config.comm
        if data.chunked is None and isinstance(data.graph, HeteroGraph):
            return start_fullgraph(group, hetero_sources(data), data.spec, comm.strategy, comm.options, data.task, data.targets, worker=HeteroFullGraphWorkerTrainer)
        return start_fullgraph(group, data.sources, data.spec, comm.strategy, comm.options, data.task, data.targets)


def hetero_sources(data: JobData) -> list[PartSource]:
    """Every worker's typed part (built here from the partition of the view, put in the Ray object store)."""
    import ray

    from gnndist.partition import load_part
    from gnndist.partition.hetero import hetero_parts

    parts = [load_part(data.partition_dir, rank) for rank in range(data.config.partition.parts)]
    return [PartSource(part.part.part_id, object_ref=ray.put(part)) for part in hetero_parts(data.graph, parts)]
