"""Runs one gnndist job on a simulated 2-node Ray cluster and prints where each worker ran.

Usage: ``python multinode_job.py RUN_DIR key=value ...``. The cluster (``ray.cluster_utils.Cluster``: a
head node with custom resource ``node0`` and a second node with ``node1``, 2 CPUs each) is joined through
``cluster.address`` like any existing cluster, and always shut down. The last stdout line is JSON:
``{"placement": {rank: node name}, "summary": ...}``.
"""
import json
import sys

from ray.cluster_utils import Cluster

from gnndist.config import load_config
from gnndist.launch.job import run_job


def main(run_dir: str, overrides: list[str]) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"node0": 1}})
    try:
        cluster.add_node(num_cpus=2, resources={"node1": 1})
        cluster.wait_for_nodes()
        names = {node.node_id: name for node, name in zip([cluster.head_node, *cluster.worker_nodes], ("node0", "node1"))}
        config = load_config(None, [*overrides, f"output.dir={run_dir}", f"cluster.address={cluster.address}"])
        summary = run_job(config, progress=False)
        placement = {w["rank"]: names.get(w["node_id"], w["node_id"]) for w in summary["workers"]}
        for rank, name in sorted(placement.items()):
            print(f"rank {rank} ran on {name}")
        print(json.dumps({"placement": placement, "summary": summary}))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
