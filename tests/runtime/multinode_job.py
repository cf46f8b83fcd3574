"""Runs one gnndist job on a simulated 2-node Ray cluster and prints where each worker ran.

Usage: ``python multinode_job.py RUN_DIR [--lose-node1-after EPOCHS] key=value ...``. The cluster (``ray.cluster_utils.Cluster``: a
head node with custom resource ``node0`` and a second node with ``node1``, 2 CPUs each) is joined through
``cluster.address`` like any existing cluster, and always shut down. The last stdout line is JSON:
``{"placement": {rank: node name}, "summary": ...}``. With ``--lose-node1-after N``, the second node is
removed (its raylet and every process on it killed) once the run has logged N epochs.
"""
import json
import sys
import threading
import time
from pathlib import Path

from ray.cluster_utils import Cluster

from gnndist.config import load_config
from gnndist.launch.job import run_job


def lose_node_after(cluster: Cluster, node, metrics: Path, epochs: int) -> None:
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
            print(f"removing node1 after {epochs} epochs at {time.time():.3f}", flush=True)
            cluster.remove_node(node)
            return
        time.sleep(0.01)


def main(run_dir: str, overrides: list[str], lose_after: int | None = None) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"node0": 1}})
    try:
        cluster.add_node(num_cpus=2, resources={"node1": 1})
        cluster.wait_for_nodes()
        names = {node.node_id: name for node, name in zip([cluster.head_node, *cluster.worker_nodes], ("node0", "node1"))}
        config = load_config(None, [*overrides, f"output.dir={run_dir}", f"cluster.address={cluster.address}"])
        if lose_after is not None:
            threading.Thread(target=lose_node_after, args=(cluster, next(iter(cluster.worker_nodes)), Path(run_dir) / "metrics.jsonl", lose_after), daemon=True).start()
        summary = run_job(config, progress=False)
        placement = {w["rank"]: names.get(w["node_id"], w["node_id"]) for w in summary["workers"]}
        for rank, name in sorted(placement.items()):
            print(f"rank {rank} ran on {name}")
        print(json.dumps({"placement": placement, "summary": summary}))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    lose_after = None
    if "--lose-node1-after" in args:
        at = args.index("--lose-node1-after")
        lose_after = int(args[at + 1])
        del args[at : at + 2]
    main(args[0], args[1:], lose_after)
