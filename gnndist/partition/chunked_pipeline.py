"""Partition a chunked graph folder into a partition directory with Ray tasks; the driver never loads the graph.

``partition_chunked(folder, method, num_parts, directory)`` writes exactly what ``partition_graph`` writes
for the loaded graph (``format.py``'s layout, same tensors, same quality report), in four waves of tasks:

1. **Assignment.** ``parallel`` runs as its own tasks over the chunks; any other (in-memory) partitioner runs
   in one task that loads the graph there (``ChunkedGraph.to_graph``). The driver keeps the ``[num_nodes]``
   owner vector (and puts it once in the object store for the other tasks).
2. **Route** (one task per edge chunk, plus one per node chunk): each edge chunk's edges are written to
   per-(chunk, part) files of the part owning the destination, in a scratch folder beside the target;
   the task also returns its in-degree bincount, cut and owned-edge counts, and routes its cut pairs
   ``{lo, hi}`` to the owner of ``lo`` (to count distinct undirected cut pairs without the graph).
   Node-chunk tasks verify the node files and count train nodes per part. Every chunk is verified once.
3. **Halo** (one task per part): the part's 1-hop halo (distinct remote sources of its in-edges, by
   owner then global id) and its distinct cut pairs. The halos give the exchange plan: receiver ``q``'s halo
   nodes owned by ``p`` are what ``p`` sends ``q``.
4. **Build** (one task per part, pinned to ``nodes[part]`` when given): merges its files into the local
   CSR (order of ``Graph``'s CSR: destination, source, then chunk order), grows the outer rings from the
   owners' files, reads its node rows and writes its part files into the temp partition folder.

The driver then writes the book and ``meta.json`` and installs the folder atomically. Any error, Ctrl-C
included, cancels the tasks and removes the scratch and temp folders; a task's error names its chunk,
node range or part (an out-of-memory task too). Memory per task: ~ one chunk (route) or one part's edges
plus O(num_nodes) index arrays (halo, build).

Ray must already be initialised by the caller (``gnndist.runtime.ray_cluster`` or ``ray.init``), and the
chunked folder, the scratch folder and the target's parent must be paths every Ray node can read and write
(one machine, or a shared filesystem).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import gnndist
from gnndist.data.chunked import ChunkedGraph
from gnndist.graph import MASK_FIELDS, csr_from_edges
from gnndist.partition.format import (
    FORMAT_VERSION,
    PartitionMeta,
    Progress,
    RowBlocks,
    _progress_callback,
    check_replaceable,
    install_partition,
    load_meta,
    new_temp_dir,
    part_folder,
    partition_key,
    write_book,
    write_part,
)
from gnndist.partition.part import Part
from gnndist.partition.quality import QualityReport
from gnndist.runtime.tasks import TaskGroup, measured

TASK_OPTIONS = {"max_retries": 0}  # a failed task fails the partition (named); no silent re-runs of OOM-killed tasks


# ---------------------------------------------------------------------- scratch files
def _bucket(scratch: Path, chunk: int, part: int, column: str) -> Path:
    """Edges of edge chunk ``chunk`` whose destination ``part`` owns: ``src``, ``dst``, ``weight``; ``cut``: cut pairs routed to ``part``."""
    return scratch / f"c{chunk:05d}-p{part:05d}-{column}.npy"


def _load(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _part_edges(scratch: Path, num_chunks: int, part: int, weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Every edge whose destination ``part`` owns, concatenated in chunk order (each chunk's own order kept)."""
    src = np.concatenate([_load(_bucket(scratch, c, part, "src")) for c in range(num_chunks)] or [np.empty(0, np.int64)])
    dst = np.concatenate([_load(_bucket(scratch, c, part, "dst")) for c in range(num_chunks)] or [np.empty(0, np.int64)])
    weight = np.concatenate([_load(_bucket(scratch, c, part, "weight")) for c in range(num_chunks)] or [np.empty(0, np.float32)]) if weighted else None
    return src, dst, weight


# ---------------------------------------------------------------------- tasks
@ray.remote
@measured
def _assign_in_memory(folder: str, partitioner: Any, num_parts: int, seed: int) -> dict:
    """Runs an in-memory partitioner in a worker: loads the graph there, returns the assignment (never the graph)."""
    from gnndist.partition.quality import vertex_cut_replication

    graph = ChunkedGraph.open(folder).to_graph()  # verifies every chunk it reads, then the fingerprint
    result = partitioner.partition(graph, num_parts, seed=seed)
    vertex_cut = None if result.edge_part is None else vertex_cut_replication(graph, result.edge_part, num_parts)
    result.edge_part = None  # O(num_edges): measured here, not sent to the driver
    return {"result": result, "vertex_cut_replication_factor": vertex_cut}


@ray.remote(num_returns=2)
@measured
def _route_edges(folder: str, chunk: int, node_part: np.ndarray, num_parts: int, scratch: str) -> tuple[dict, np.ndarray]:
    """Routes edge chunk ``chunk`` to the owners of the destinations; returns its cut counts, and its in-degrees
    as a second object (``int32`` when the chunk has fewer than 2^31 edges) that only :func:`_sum_in_degrees` reads."""
    graph = ChunkedGraph.open(folder)
    block = graph.edge_chunk(chunk)  # verifies the sha256: every edge chunk is checked here, once
    src, dst = np.asarray(block.src), np.asarray(block.dst)
    src_part, dst_part = node_part[src], node_part[dst]
    order = np.argsort(dst_part, kind="stable")  # groups by owner, keeping the chunk's edge order within a group (a radix sort: see owner_vector)
    owned_edges = np.bincount(dst_part, minlength=num_parts)
    bounds = np.concatenate([[0], np.cumsum(owned_edges)])
    columns = {"src": src, "dst": dst} | ({"weight": np.asarray(block.weight)} if block.weight is not None else {})
    for part in range(num_parts):
        rows = order[bounds[part]:bounds[part + 1]]
        for column, values in columns.items():
            np.save(_bucket(Path(scratch), chunk, part, column), values[rows])
    cut = src_part != dst_part
    lo, hi = np.minimum(src[cut], dst[cut]), np.maximum(src[cut], dst[cut])
    pair_owner = node_part[lo]
    keys = lo * graph.num_nodes + hi
    for part in range(num_parts):
        np.save(_bucket(Path(scratch), chunk, part, "cut"), keys[pair_owner == part])
    in_degree = np.bincount(dst, minlength=graph.num_nodes)
    return {"edges_cut": int(cut.sum()), "owned_edges": owned_edges}, in_degree.astype(np.int32) if dst.size < 2**31 else in_degree


@ray.remote(num_returns=2)
@measured
def _sum_in_degrees(num_nodes: int, *in_degrees: np.ndarray) -> tuple[dict, np.ndarray]:
    """The graph's in-degrees: the sum of every edge chunk's. A task, so that the driver never maps the chunks'
    ``[num_nodes]`` vectors: a process keeps the object-store pages it has read resident, and one vector per
    edge chunk made the driver's peak grow with the chunk count (41 chunks of 1M edges on a 2M-node graph: 0.76
    GiB of object-store pages in the driver, against 0.31 GiB with 10 chunks)."""
    total = np.zeros(num_nodes, np.int64)
    for in_degree in in_degrees:
        total += in_degree
    return {}, total


@ray.remote
@measured
def _check_node_chunk(folder: str, chunk: int, node_part: np.ndarray, num_parts: int) -> dict:
    """Verifies every field file of node chunk ``chunk``; counts its train nodes per part."""
    graph = ChunkedGraph.open(folder)
    start = graph.meta.node_chunks[chunk].start
    train = None
    for name in graph.node_fields:
        rows = graph.node_chunk(chunk, name, verify=True)
        if name == "train_mask":
            owners = node_part[start:start + rows.shape[0]]
            train = np.bincount(owners[np.asarray(rows, dtype=bool)], minlength=num_parts)
    return {"train_nodes": train}


def owner_vector(node_part: np.ndarray, num_parts: int) -> np.ndarray:
    """Every node's part in the narrowest unsigned dtype that holds ``num_parts - 1`` (uint8 up to 256 parts).

    The tasks group edges and halo nodes by owner with numpy's stable argsort, which is a radix sort for 8- and
    16-bit integers and a merge sort for int64: 0.03 s against 0.13 s on a 3.8M-edge chunk. The vector every task
    maps is also 8x smaller than int64's (2 MB for 2M nodes).
    """
    return node_part.astype(np.min_scalar_type(max(num_parts - 1, 0)))


def _distinct(ids: np.ndarray, num_nodes: int) -> np.ndarray:
    """The distinct ``ids`` in increasing order (as ``np.unique``), read off a ``[num_nodes]`` mask instead of sorting ~E/P ids."""
    seen = np.zeros(num_nodes, bool)
    seen[ids] = True
    return np.flatnonzero(seen)


def _by_owner(nodes: np.ndarray, node_part: np.ndarray) -> np.ndarray:
    """Sorted unique ``nodes`` reordered by (owner part, global id): the order of halo rings."""
    return nodes[np.argsort(node_part[nodes], kind="stable")]


@ray.remote(num_returns=2)
@measured
def _part_halo(num_chunks: int, part: int, num_parts: int, node_part: np.ndarray, scratch: str) -> tuple[dict, np.ndarray]:
    """Part ``part``'s 1-hop halo (owner, then global id), its 1-hop rows per owner and its number of distinct cut pairs."""
    scratch_dir = Path(scratch)
    src = np.concatenate([_load(_bucket(scratch_dir, c, part, "src")) for c in range(num_chunks)] or [np.empty(0, np.int64)])
    halo = _by_owner(_distinct(src[node_part[src] != part], node_part.size), node_part)
    cut = np.concatenate([_load(_bucket(scratch_dir, c, part, "cut")) for c in range(num_chunks)] or [np.empty(0, np.int64)])
    info = {"recv_counts": np.bincount(node_part[halo], minlength=num_parts), "undirected_edges_cut": int(np.unique(cut).size)}
    return info, halo


def _gather_rows(graph: ChunkedGraph, name: str, ids: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rows ``ids`` of node field ``name`` into ``out``, gathered chunk by chunk from the memory maps."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    for index, chunk in enumerate(graph.meta.node_chunks):
        lo, hi = np.searchsorted(sorted_ids, [chunk.start, chunk.stop])
        if hi > lo:
            out[order[lo:hi]] = graph.node_chunk(index, name, verify=False)[sorted_ids[lo:hi] - chunk.start]
    return out


def _as_loaded(name: str, value: torch.Tensor) -> torch.Tensor:
    """Node field ``name`` in the dtype the in-memory ``Graph`` holds it: float features, int64 labels."""
    if name == "x" and not value.is_floating_point():
        return value.float()
    if name == "y" and not value.is_floating_point():
        return value.long().view(-1) if value.dim() == 2 and value.size(1) == 1 else value.long()
    return value


def _node_rows(graph: ChunkedGraph, name: str, ids: np.ndarray) -> torch.Tensor:
    """Rows ``ids`` of node field ``name``, as the in-memory ``Graph`` holds them."""
    spec = graph.node_fields[name]
    return _as_loaded(name, torch.from_numpy(_gather_rows(graph, name, ids, np.empty((ids.size, *spec.row_shape), spec.dtype))))


FEATURE_BLOCK_ROWS = 1 << 15  # 16 MiB of 128 float32 features: the buffer a part's feature rows pass through


def _feature_blocks(graph: ChunkedGraph, ids: np.ndarray) -> RowBlocks:
    """Rows ``ids`` of the features ``x`` as :class:`RowBlocks`: gathered ``FEATURE_BLOCK_ROWS`` at a time into one
    reused buffer while the part file is written, so a part's features (most of its file) are never held whole."""
    spec = graph.node_fields["x"]
    dtype = _as_loaded("x", torch.from_numpy(np.empty(0, spec.dtype))).dtype

    def blocks() -> Iterator[torch.Tensor]:
        buffer = np.empty((min(FEATURE_BLOCK_ROWS, ids.size), *spec.row_shape), spec.dtype)
        for start in range(0, ids.size, FEATURE_BLOCK_ROWS):
            block = ids[start:start + FEATURE_BLOCK_ROWS]
            yield _as_loaded("x", torch.from_numpy(_gather_rows(graph, "x", block, buffer[: block.size])))

    return RowBlocks((ids.size, *spec.row_shape), dtype, blocks)


@ray.remote
@measured
def _build_part(
    folder: str, part_id: int, num_parts: int, halo_hops: int, node_part: np.ndarray, in_degree: np.ndarray, halos: list, scratch: str, target: str
) -> dict:
    """Builds part ``part_id`` (see :class:`Part`) from the scratch files and writes it into ``target``."""
    graph = ChunkedGraph.open(folder, verify=False)  # the route wave verified every chunk
    scratch_dir, n = Path(scratch), graph.num_nodes
    num_chunks = len(graph.meta.edge_chunks)
    halos = ray.get(halos)
    owned = np.flatnonzero(node_part == part_id)
    is_local = node_part == part_id
    edges = [_part_edges(scratch_dir, num_chunks, part_id, graph.has_edge_weight)]
    rings = [halos[part_id]]
    is_local[rings[0]] = True
    for _ in range(1, halo_hops):
        edges.append(_in_edges(scratch_dir, num_chunks, rings[-1], node_part, graph.has_edge_weight))
        sources = _distinct(edges[-1][0], n)
        rings.append(_by_owner(sources[~is_local[sources]], node_part))
        is_local[rings[-1]] = True
    global_ids = np.concatenate([owned, *rings])
    n_local = global_ids.size
    global_to_local = np.full(n, -1, np.int64)
    global_to_local[global_ids] = np.arange(n_local)
    src = torch.from_numpy(np.concatenate([e[0] for e in edges]))
    rows = torch.from_numpy(global_to_local[np.concatenate([e[1] for e in edges])])
    weight = torch.from_numpy(np.concatenate([e[2] for e in edges])) if graph.has_edge_weight else None
    indptr, src, weight = csr_from_edges(src, rows, n_local, weight, num_src=n)  # ties keep chunk order, as Graph's CSR does
    send = [halos[receiver][node_part[halos[receiver]] == part_id] for receiver in range(num_parts)]
    node_data = {name: _node_rows(graph, name, global_ids) for name in graph.node_fields if name != "x"}
    is_owned = torch.arange(n_local) < owned.size
    for name in MASK_FIELDS:
        if name in node_data:
            node_data[name] &= is_owned
    part = Part(
        part_id=part_id,
        num_parts=num_parts,
        num_owned=int(owned.size),
        halo_hops=halo_hops,
        num_halo_per_hop=[int(ring.size) for ring in rings],
        global_ids=torch.from_numpy(global_ids),
        halo_owner=torch.from_numpy(node_part[global_ids[owned.size:]].astype(np.int64)),
        indptr=indptr,
        indices=torch.from_numpy(global_to_local[src.numpy()]),
        in_degree=torch.from_numpy(in_degree[global_ids]),
        send_indices=torch.from_numpy(global_to_local[np.concatenate(send)]),
        send_counts=torch.tensor([s.size for s in send], dtype=torch.long),
        recv_counts=torch.from_numpy(np.bincount(node_part[rings[0]], minlength=num_parts).astype(np.int64)),
        edge_weight=weight,
        **node_data,
    )
    streamed = {"x": _feature_blocks(graph, global_ids)} if "x" in graph.node_fields else {}
    return {"files": write_part(Path(target), part, streamed)}


def _in_edges(scratch: Path, num_chunks: int, nodes: np.ndarray, node_part: np.ndarray, weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The in-edges of ``nodes`` (owned elsewhere), read from their owners' files: each node's edges in chunk order."""
    wanted = np.zeros(node_part.size, bool)
    wanted[nodes] = True
    pieces = []
    for owner in np.unique(node_part[nodes]):
        src, dst, weight = _part_edges(scratch, num_chunks, int(owner), weighted)
        keep = wanted[dst]
        pieces.append((src[keep], dst[keep], None if weight is None else weight[keep]))
    if not pieces:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32) if weighted else None
    return (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]), np.concatenate([p[2] for p in pieces]) if weighted else None)


# ---------------------------------------------------------------------- the driver
def partition_chunked(
    folder: str | os.PathLike,
    method: Any,
    num_parts: int,
    directory: str | os.PathLike,
    *,
    seed: int = 0,
    halo_hops: int = 1,
    options: dict[str, Any] | None = None,
    force: bool = False,
    reuse: bool = False,
    feature_width: int | None = None,
    progress: bool | Progress = False,
    nodes: Sequence[str] | None = None,
) -> tuple[PartitionMeta, bool]:
    """Partitions the chunked graph in ``folder`` into the partition directory ``directory`` with Ray tasks.

    The result equals ``partition_graph(ChunkedGraph.open(folder).to_graph(), ...)`` for the same node
    assignment (every tensor, the book, the quality report); this process never loads the graph: it holds
    the ``[num_nodes]`` assignment vector (the in-degrees are summed by a task). Ray must already be initialised by the caller.

    Args:
        folder: a chunked graph folder (``gnndist convert``).
        method: a partitioner name or instance; ``parallel`` runs as tasks over the chunks, any other
            partitioner in one task that loads the graph.
        num_parts, seed, halo_hops, options, force, feature_width: as for :func:`partition_graph`.
        reuse: return the existing ``directory`` if its key (from the folder's fingerprint) matches.
        progress: a bar (True) or ``progress(parts_written, num_parts)``, called in the driver.
        nodes: Ray node ids, one per part: part ``p`` is built on ``nodes[p]`` (a hard
            ``NodeAffinitySchedulingStrategy``); None schedules freely.

    Returns:
        ``(meta, reused)``; ``meta.quality.partition_task_peak_bytes`` is the largest peak RSS of any task.

    Raises:
        FileExistsError: ``directory`` may not be written (see :func:`check_replaceable`), or holds another partition with ``reuse``.
        FileNotFoundError, ValueError: a missing or corrupted chunk (named); nothing is left behind.
        MemoryError: a task ran out of memory (named by its chunk, node range or part).
    """
    from gnndist.partitioners import resolve_partitioner

    if not ray.is_initialized():
        raise RuntimeError("partition_chunked runs Ray tasks: initialise Ray first (gnndist.runtime.ray_cluster() or ray.init())")
    if isinstance(halo_hops, bool) or not isinstance(halo_hops, int) or halo_hops < 1:
        raise ValueError(f"Expected halo_hops >= 1 (got {halo_hops!r})")
    partitioner = resolve_partitioner(method, **(options or {}))
    graph = ChunkedGraph.open(folder)
    meta = graph.meta
    if not 1 <= num_parts <= meta.num_nodes:
        raise ValueError(f"Expected num_parts in [1, {meta.num_nodes}] (got {num_parts})")
    if nodes is not None and len(nodes) != num_parts:
        raise ValueError(f"Expected one Ray node per part ({num_parts}), got {len(nodes)}")
    directory = Path(directory)
    key = partition_key(meta.fingerprint, partitioner.method_name, partitioner.options(), seed, num_parts, halo_hops)
    if reuse and not force and (directory / "meta.json").is_file():
        existing = load_meta(directory)
        if existing.key == key:
            return existing, True
        raise FileExistsError(f"Partition directory {directory} holds a different partition (key {existing.key}, wanted {key}); pass --force to replace it")
    check_replaceable(directory, force)
    if feature_width is None:
        feature_width = meta.node_data["x"].row_shape[0] if "x" in meta.node_data else 128
    if feature_width < 1:
        raise ValueError(f"Expected feature_width >= 1 (got {feature_width})")

    tasks = TaskGroup()
    scratch = new_temp_dir(directory, "shuffle")
    tmp = new_temp_dir(directory)
    report, close = _progress_callback(progress, num_parts)
    try:
        result, vertex_cut = _assign(partitioner, graph, num_parts, seed, tasks, scratch)
        node_part = owner_vector(result.node_part.numpy(), num_parts)
        node_part_ref = ray.put(node_part)
        totals, in_degree_ref = _route(graph, node_part_ref, num_parts, scratch, tasks)
        halo_refs, infos = [], []
        for part in range(num_parts):
            info, halo = tasks.submit(_part_halo, f"part {part} (halo)", len(meta.edge_chunks), part, num_parts, node_part_ref, str(scratch), **TASK_OPTIONS)
            infos.append(info)
            halo_refs.append(halo)
        halo_infos = tasks.wait(infos)
        files = write_book(tmp, result.node_part, num_parts)
        builds = []
        for part in range(num_parts):
            (tmp / part_folder(part)).mkdir()
            placement = {} if nodes is None else {"scheduling_strategy": NodeAffinitySchedulingStrategy(nodes[part], soft=False)}
            builds.append(tasks.submit(
                _build_part, f"part {part} (build)", str(folder), part, num_parts, halo_hops, node_part_ref, in_degree_ref, halo_refs, str(scratch), str(tmp),
                **TASK_OPTIONS, **placement,
            ))
        for built in tasks.wait(builds, on_done=report):
            files.update(built["files"])
        shutil.rmtree(scratch, ignore_errors=True)
        counts = torch.from_numpy(np.stack([info["recv_counts"] for info in halo_infos], axis=1).astype(np.int64))
        quality = QualityReport.from_counts(
            result,
            num_edges=meta.num_edges,
            edges_cut=totals["edges_cut"],
            undirected_edges_cut=sum(info["undirected_edges_cut"] for info in halo_infos),
            owned_edges=torch.from_numpy(totals["owned_edges"]),
            train_nodes=None if totals["train_nodes"] is None else torch.tensor(totals["train_nodes"]),
            exchange_counts=counts,
            feature_width=feature_width,
            vertex_cut_replication_factor=vertex_cut,
            partition_task_peak_bytes=tasks.peak_bytes,
        )
        partition = PartitionMeta(
            format_version=FORMAT_VERSION, graph_fingerprint=meta.fingerprint, num_nodes=meta.num_nodes, num_edges=meta.num_edges,
            method=result.method, options=result.options, seed=result.seed, num_parts=num_parts, halo_hops=halo_hops,
            key=key, quality=quality, files=files, gnndist_version=gnndist.__version__,
        )
        install_partition(tmp, directory, partition, force)
    except BaseException:
        tasks.cancel()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        close()
    return partition, False


def _assign(partitioner: Any, graph: ChunkedGraph, num_parts: int, seed: int, tasks: TaskGroup, scratch: Path) -> tuple[Any, float | None]:
    """``(PartitionResult, vertex-cut replication or None)``: by the partitioner's own tasks, or in one task that loads the graph."""
    assign_chunked = getattr(partitioner, "assign_chunked", None)
    if assign_chunked is not None:
        return assign_chunked(graph, num_parts, seed=seed, tasks=tasks, scratch=scratch), None
    ref = tasks.submit(_assign_in_memory, f"partitioner {partitioner.method_name} (in-memory, whole graph)", str(graph.directory), partitioner, num_parts, seed, **TASK_OPTIONS)
    (done,) = tasks.wait([ref])
    result = done["result"]
    result.peak_memory_bytes = max(result.peak_memory_bytes, done["peak_bytes"])
    return result, done["vertex_cut_replication_factor"]


def _route(graph: ChunkedGraph, node_part_ref: Any, num_parts: int, scratch: Path, tasks: TaskGroup) -> tuple[dict[str, Any], Any]:
    """The route wave: every edge chunk to the destinations' owners, every node chunk verified; returns the
    summed counts and a ref to the graph's in-degrees (summed by a task, never read here)."""
    folder = str(graph.directory)
    routed = [
        tasks.submit(_route_edges, f"edge chunk {chunk.name}", folder, index, node_part_ref, num_parts, str(scratch), **TASK_OPTIONS)
        for index, chunk in enumerate(graph.meta.edge_chunks)
    ]
    edge_refs, degree_refs = [info for info, _ in routed], [in_degree for _, in_degree in routed]
    node_refs = [
        tasks.submit(_check_node_chunk, f"node chunk {chunk.name} (nodes {chunk.start}..{chunk.stop})", folder, index, node_part_ref, num_parts, **TASK_OPTIONS)
        for index, chunk in enumerate(graph.meta.node_chunks)
    ]
    summed, in_degree = tasks.submit(_sum_in_degrees, f"in-degrees of {len(degree_refs)} edge chunks", graph.num_nodes, *degree_refs, **TASK_OPTIONS)
    totals: dict[str, Any] = {"edges_cut": 0, "owned_edges": np.zeros(num_parts, np.int64), "train_nodes": None}
    for _, done in tasks.as_completed(edge_refs):
        totals["edges_cut"] += done["edges_cut"]
        totals["owned_edges"] += done["owned_edges"]
    for _, done in tasks.as_completed(node_refs):
        if done["train_nodes"] is not None:
            totals["train_nodes"] = done["train_nodes"] if totals["train_nodes"] is None else totals["train_nodes"] + done["train_nodes"]
    tasks.wait([summed])
    return totals, in_degree
