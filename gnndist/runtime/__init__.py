"""Ray runtime: cluster connection, the worker group, process-group rendezvous."""
from gnndist.runtime.cluster import ray_cluster
from gnndist.runtime.worker_group import Worker, WorkerContext, WorkerGroup

__all__ = ["Worker", "WorkerContext", "WorkerGroup", "ray_cluster"]
