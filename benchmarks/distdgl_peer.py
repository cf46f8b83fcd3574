"""DistDGL's side of ``gnndist bench distdgl``: DGL's own partitioner, servers, trainers and loader, on 127.0.0.1.

Started by file path with the DGL environment's python (DGL 2.1, torch 2.2; gnndist is not
installed there), so it imports only the standard library, torch, numpy, psutil, DGL and its
neighbours :mod:`child` and :mod:`peers`. Three roles, one per command line:

- ``distdgl_peer.py driver SPEC_JSON`` answers the parent over the child protocol (:mod:`child`):
  ``partition`` runs ``dgl.distributed.partition_graph`` (METIS) on the ``.npz`` graph; ``train``
  writes an ip_config of ``127.0.0.1`` lines, starts one server and one trainer per part as local
  processes (the environment ``dgl/tools/launch.py`` sets; no ssh), follows them with bounded waits
  (peak RSS from the kernel's high-water mark, servers' CPU time at every epoch boundary), kills
  whatever is left, and scores the trained weights on the whole graph (full neighbourhoods).
- ``distdgl_peer.py server SPEC_JSON``: one ``DistGraphServer`` (its part id is ``DGL_SERVER_ID``).
- ``distdgl_peer.py trainer SPEC_JSON``: ``dgl.distributed.initialize`` + gloo + ``DistGraph`` +
  ``DistNodeDataLoader`` + DDP GraphSAGE, DGL's ``examples/distributed/graphsage`` loop.

Two DGL "machines" on one host need two things DistDGL assumes a real second host gives them:

- Their own ``/dev/shm``. Every server publishes its part's node data as POSIX shared memory named
  after the data alone (``node~_N~feat-kvdata-``), so a second server on the host opens the first
  one's segments and both serve one buffer. :func:`isolated` starts the driver, and inside it every
  server of part > 0, in a private mount namespace with a fresh tmpfs on ``/dev/shm``
  (``unshare -m``; needs root or user namespaces). Where that is refused, the run stops with the
  reason rather than train on mixed-up features. The namespaces also keep segments of a killed
  run from outliving it and from meeting another DistDGL run on the same host.
- A machine id. A client finds its machine by looking its IP up in the ip_config; every line says
  127.0.0.1, so both trainers are machine 0: they read part 0's rows from server 0's shared memory
  and everything of part 1 over RPC from server 1, and both load part 0's partition book (the
  kvstore's local offsets follow it). Each trainer's training seeds are still its own part's share
  (``node_split`` with its rank's book), as on two hosts. The servers run with
  ``disable_shared_mem=True`` (as DGL's own multi-machine tests on one host do), so sampling goes
  to the servers over RPC for both parts.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
import torch.nn.functional as F

if __package__:
    from gnndist.benchmarks.child import serve
    from gnndist.benchmarks.peers import arrays_of, dgl_graph, dgl_sage, full_graph_accuracy
else:  # run by path: child.py and peers.py sit beside this file
    from child import serve
    from peers import arrays_of, dgl_graph, dgl_sage, full_graph_accuracy

GRAPH_NAME = "sbm"
POLL_S = 0.02


def isolated(command: list[str]) -> list[str]:
    """``command`` in a private mount namespace with its own empty ``/dev/shm`` (a DGL machine's shared memory)."""
    script = 'mount -t tmpfs -o size=50% tmpfs /dev/shm && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


def check_isolation() -> None:
    """Raises with the reason when :func:`isolated` cannot run here."""
    try:
        probe = subprocess.run(isolated(["true"]), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"cannot give each DGL server its own /dev/shm (unshare --mount): {error}") from error
    if probe.returncode != 0:
        raise RuntimeError(f"cannot give each DGL server its own /dev/shm (unshare --mount failed: {probe.stderr.strip()})")


def _die_with_parent() -> None:
    """Runs in each server and trainer before exec: the kernel kills it when the driver dies (Linux
    ``PR_SET_PDEATHSIG``), so a driver killed by the parent's timeout leaves no DistDGL process behind."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_bytes(pid: int) -> int | None:
    """The kernel's high-water mark of process ``pid`` (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


# ------------------------------------------------------------------------------------------------ driver
class Driver:
    """Partitions with DGL and runs DistDGL's servers and trainers as local processes.

    Spec keys: npz (the graph, :func:`peers.write_graph`), weights (gnndist's initial weights, ``.npz``),
    workdir (a fresh folder; removed by the parent), num_parts, fanouts (hop order), batch_size (seeds per
    optimizer step over all trainers: each trainer's loader takes ``batch_size / num_parts``),
    hidden, dropout, lr, weight_decay, epochs, threads, timeout_s (bound on the whole training run).
    """

    def __init__(self, spec: dict[str, Any]):
        import dgl

        self.dgl, self.spec = dgl, spec
        self.workdir = Path(spec["workdir"])
        self.part_config = self.workdir / "parts" / f"{GRAPH_NAME}.json"

    def partition(self) -> dict[str, Any]:
        """``dgl.distributed.partition_graph`` with METIS into ``num_parts`` parts; seconds and this process's peak."""
        arrays = arrays_of(self.spec["npz"])
        graph = dgl_graph(arrays["indptr"], arrays["indices"])
        graph.ndata["feat"] = arrays["x"]
        graph.ndata["label"] = arrays["y"]
        for split in ("train", "val", "test"):
            graph.ndata[f"{split}_mask"] = arrays[f"{split}_mask"]
        start = time.perf_counter()
        self.dgl.distributed.partition_graph(
            graph, GRAPH_NAME, self.spec["num_parts"], str(self.part_config.parent), part_method="metis", balance_ntypes=graph.ndata["train_mask"], balance_edges=True
        )
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "peak_bytes": _peak_bytes(os.getpid())}

    def _environment(self, role: str, ip_config: Path) -> dict[str, str]:
        """What ``dgl/tools/launch.py`` exports for a server or a trainer (one trainer and one server per machine, no samplers)."""
        threads = str(self.spec["threads"])
        env = dict(os.environ, DGLBACKEND="pytorch", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        env.update(
            DGL_DIST_MODE="distributed",
            DGL_ROLE=role,
            DGL_NUM_SAMPLER="0",
            DGL_NUM_CLIENT=str(self.spec["num_parts"]),
            DGL_CONF_PATH=str(self.part_config),
            DGL_IP_CONFIG=str(ip_config),
            DGL_NUM_SERVER="1",
            DGL_GRAPH_FORMAT="csc",
        )
        return env

    def train(self) -> dict[str, Any]:
        """Starts the servers and trainers, waits for the trainers (bounded), scores the model; kills everything at the end."""
        num_parts, timeout_s = self.spec["num_parts"], self.spec["timeout_s"]
        ip_config = self.workdir / "ip_config.txt"
        ip_config.write_text("".join(f"127.0.0.1 {_free_port()}\n" for _ in range(num_parts)))
        master_port = _free_port()
        script = str(Path(__file__).resolve())
        processes: dict[str, subprocess.Popen] = {}
        logs: dict[str, Path] = {}

        def start(name: str, role: str, dgl_role: str, extra_env: dict[str, str], own_shm: bool = False) -> None:
            logs[name] = self.workdir / f"{name}.log"
            command = [sys.executable, script, role, json.dumps(self.spec)]
            with open(logs[name], "w") as log:
                env = dict(self._environment(dgl_role, ip_config), **extra_env)
                processes[name] = subprocess.Popen(
                    isolated(command) if own_shm else command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
                )

        peaks: dict[str, int] = {}
        boundaries: dict[str, float] = {}  # "start0", "end0", ...: the servers' CPU seconds at each epoch boundary
        try:
            for part in range(num_parts):
                start(f"server{part}", "server", "server", {"DGL_SERVER_ID": str(part)}, own_shm=part > 0)
            for rank in range(num_parts):
                start(f"trainer{rank}", "trainer", "client", {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(master_port), "RANK": str(rank), "WORLD_SIZE": str(num_parts), "LOCAL_RANK": "0", "DGL_GROUP_ID": "0"})
            deadline = time.monotonic() + timeout_s
            trainers = [name for name in processes if name.startswith("trainer")]
            servers = [processes[name].pid for name in processes if name.startswith("server")]
            while True:
                for name, process in processes.items():
                    peak = _peak_bytes(process.pid)
                    if peak is not None:
                        peaks[name] = max(peak, peaks.get(name, 0))
                for marker in sorted(self.workdir.glob("epoch-*")):
                    key = marker.name.removeprefix("epoch-")
                    if key not in boundaries:
                        boundaries[key] = sum(filter(None, map(_cpu_seconds, servers)))
                failed = [name for name, process in processes.items() if process.poll() not in (None, 0)]
                if failed:
                    raise RuntimeError(f"DistDGL {failed[0]} exited with code {processes[failed[0]].returncode}: {self._tail(logs[failed[0]])}")
                if all(processes[name].poll() == 0 for name in trainers):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"DistDGL training did not finish within {timeout_s:.0f} s; last lines of trainer0: {self._tail(logs['trainer0'])}")
                time.sleep(POLL_S)
            server_wait = time.monotonic() + 30  # the servers exit once every trainer has disconnected
            while any(processes[name].poll() is None for name in processes) and time.monotonic() < server_wait:
                for name in processes:
                    peak = _peak_bytes(processes[name].pid)
                    if peak is not None:
                        peaks[name] = max(peak, peaks.get(name, 0))
                time.sleep(POLL_S)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                process.wait()
        results = [json.loads((self.workdir / f"trainer{rank}.json").read_text()) for rank in range(num_parts)]
        epochs = []
        for epoch in range(self.spec["epochs"]):
            server_cpu = boundaries[f"end{epoch}"] - boundaries[f"start{epoch}"] if f"end{epoch}" in boundaries and f"start{epoch}" in boundaries else None
            trainer_cpu = sum(r["epochs"][epoch]["cpu_seconds"] for r in results)
            epochs.append({
                "seconds": max(r["epochs"][epoch]["seconds"] for r in results),
                "trainer_cpu_seconds": trainer_cpu,
                "server_cpu_seconds": server_cpu,
                "seeds": sum(r["epochs"][epoch]["seeds"] for r in results),
                "loss": sum(r["epochs"][epoch]["loss"] for r in results) / num_parts,
            })
        return {
            "epochs": epochs,
            "setup_s": max(r["setup_s"] for r in results),
            "test_acc": self._test_accuracy(),
            "peak_bytes": {name: peaks.get(name) for name in processes},
            "trainer_peak_bytes_self": [r["peak_bytes"] for r in results],
            "ip_config": ip_config.read_text().split("\n")[0],
        }

    def _test_accuracy(self) -> float:
        arrays = arrays_of(self.spec["npz"])
        model = dgl_sage(arrays_of(str(self.workdir / "trained.npz")), arrays["x"].size(1), self.spec["hidden"], int(arrays["y"].max()) + 1, len(self.spec["fanouts"]), self.spec["dropout"])
        return full_graph_accuracy(model, dgl_graph(arrays["indptr"], arrays["indices"]), arrays["x"], arrays["y"], arrays["test_ids"])

    @staticmethod
    def _tail(log: Path, lines: int = 15) -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def serve_driver(spec: dict[str, Any]) -> None:
    """Answers ``partition`` and ``train`` (a failure answers ``{"error": ...}``); DGL's own prints (Python
    and C++) go to stderr, only answers to stdout."""
    sys.stdout = os.fdopen(os.dup(1), "w")  # the answers' pipe
    os.dup2(2, 1)  # file descriptor 1, where DGL's C++ code and print() write, is now stderr

    def quiet(handler):
        def run(**fields: Any) -> dict[str, Any]:
            with contextlib.redirect_stdout(sys.stderr):
                try:
                    return handler(**fields)
                except Exception as error:  # the parent reports it; the driver stays up for the next request
                    return {"error": f"{type(error).__name__}: {error}"}

        return run

    driver = Driver(spec)
    serve({"dgl": driver.dgl.__version__, "torch": torch.__version__}, {"partition": quiet(driver.partition), "train": quiet(driver.train)})


# ------------------------------------------------------------------------------------------------ server
def run_server(spec: dict[str, Any]) -> None:
    """One ``DistGraphServer`` for part ``DGL_SERVER_ID``; returns when every trainer has disconnected."""
    import dgl
    from dgl.distributed import rpc

    torch.set_num_threads(spec["threads"])
    rpc.reset()  # as dgl.distributed.initialize does for a server
    server = dgl.distributed.DistGraphServer(
        int(os.environ["DGL_SERVER_ID"]),
        os.environ["DGL_IP_CONFIG"],
        int(os.environ["DGL_NUM_SERVER"]),
        int(os.environ["DGL_NUM_CLIENT"]),
        os.environ["DGL_CONF_PATH"],
        disable_shared_mem=True,
        graph_format=os.environ["DGL_GRAPH_FORMAT"].split(","),
    )
    server.start()


# ------------------------------------------------------------------------------------------------ trainer
def run_trainer(spec: dict[str, Any]) -> None:
    """DGL's distributed GraphSAGE loop: DistGraph + DistNodeDataLoader + DDP; writes ``trainerRANK.json``."""
    import datetime
    import resource

    import dgl

    torch.set_num_threads(spec["threads"])
    workdir, rank, world = Path(spec["workdir"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    setup_start = time.perf_counter()
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{os.environ['MASTER_PORT']}", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=spec["timeout_s"])
    )
    machine_book = dgl.distributed.load_partition_book(os.environ["DGL_CONF_PATH"], 0)[0]  # every trainer is machine 0 (see the module doc)
    graph = dgl.distributed.DistGraph(GRAPH_NAME, gpb=machine_book, part_config=os.environ["DGL_CONF_PATH"])
    own_book = dgl.distributed.load_partition_book(os.environ["DGL_CONF_PATH"], rank)[0]
    train_mask = graph.ndata["train_mask"][torch.arange(graph.num_nodes())]
    train_ids = dgl.distributed.node_split(train_mask, own_book, rank=rank, force_even=True)
    weights = arrays_of(spec["weights"])
    num_classes = spec["num_classes"]
    model = dgl_sage(weights, spec["num_features"], spec["hidden"], num_classes, len(spec["fanouts"]), spec["dropout"])
    model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sampler = dgl.dataloading.NeighborSampler(list(reversed(spec["fanouts"])))  # DGL lists fanouts input layer first
    batch_size = -(-spec["batch_size"] // world)  # spec's batch is the seeds of one optimizer step, over all trainers (gnndist's meaning)
    loader = dgl.dataloading.DistNodeDataLoader(graph, train_ids, sampler, batch_size=batch_size, shuffle=True, drop_last=False)
    setup_s = time.perf_counter() - setup_start
    epochs = []
    for epoch in range(spec["epochs"]):
        torch.manual_seed(epoch * world + rank)
        torch.distributed.barrier()
        if rank == 0:
            (workdir / f"epoch-start{epoch}").touch()
        start, start_cpu = time.perf_counter(), time.process_time()
        total, steps, seeds_seen = 0.0, 0, 0
        model.train()
        with model.join():
            for input_nodes, seeds, blocks in loader:
                features = graph.ndata["feat"][input_nodes]
                labels = graph.ndata["label"][seeds].long()
                loss = F.cross_entropy(model(blocks, features), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss)
                steps += 1
                seeds_seen += len(seeds)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        torch.distributed.barrier()
        if rank == 0:
            (workdir / f"epoch-end{epoch}").touch()
        epochs.append({"seconds": seconds, "cpu_seconds": cpu_seconds, "seeds": seeds_seen, "loss": total / max(steps, 1)})
    if rank == 0:
        np.savez(workdir / "trained.npz", **{name: value.detach().numpy() for name, value in _gnndist_names(model.module).items()})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    (workdir / f"trainer{rank}.json").write_text(json.dumps({"epochs": epochs, "setup_s": setup_s, "peak_bytes": peak, "train_ids": len(train_ids)}))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def _gnndist_names(model) -> dict[str, torch.Tensor]:
    """The model's weights under the names :func:`peers.dgl_sage` loads."""
    named = {}
    for i, conv in enumerate(model.convs):
        named.update({f"conv{i}_neigh_weight": conv.fc_neigh.weight, f"conv{i}_self_weight": conv.fc_self.weight, f"conv{i}_bias": conv.fc_self.bias})
    return named


ROLES = {"driver": serve_driver, "server": run_server, "trainer": run_trainer}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ROLES:
        print(f"usage: distdgl_peer.py {{{','.join(ROLES)}}} SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(argv[1])
    torch.set_num_threads(spec["threads"])
    ROLES[argv[0]](spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
