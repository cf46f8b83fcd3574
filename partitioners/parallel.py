"""Parallel streaming partitioner (``parallel``): LDG or Fennel over node ranges in synchronised rounds, then
size-constrained label propagation; runs as Ray tasks over a chunked graph, or in one process on a ``Graph``.

The nodes are cut into ``tasks`` contiguous ranges. A bucketing pass routes every edge, in both directions
(the undirected view), to the range of its node, so each range holds the neighbour lists of its own nodes
(~ 2E / tasks entries). Then:

* **Streaming** (``rounds`` rounds): every range streams the next slice of its nodes (a seeded permutation
  of the range) and puts each node in the part with the best LDG score (Stanton & Kliot, 2012) or Fennel
  score (Tsourakakis et al., 2014), seeing the parts of all nodes placed in earlier rounds plus its own
  placements of this round. Between rounds the assignment vector and the part sizes are synchronised:
  each range works on the same snapshot, as in parallel restreaming (Nishimura & Ugander, 2013). While it
  streams, a range counts its own placements ``tasks`` times in the size penalty (all ranges fill the parts
  at once) and never exceeds its share of each part's remaining capacity.
* **Refinement** (``refine_rounds`` rounds): label propagation with size constraints (as in ParHIP,
  Meyerhenke et al., 2017): every node moves to the part holding most of its neighbours, if strictly more
  than its own part holds, within the range's share of each part's free capacity, so no part ever exceeds
  ``capacity = ceil((1 + imbalance) * total weight / num_parts)``.

Sizes count node weight (option ``balance``), one constraint per column: 1 per node, its neighbour entries
(in- plus out-degree, known to its range after bucketing), or both as two constraints (as METIS's ``ncon=2``:
every part within the capacity of each). The driver holds the ``[num_nodes, ncon]`` weights beside the snapshot.

The result depends on the seed and the options only (``tasks`` is an option, not the cluster size): each
round works on the synchronised snapshot, so task scheduling cannot change it, and the in-memory path
(:meth:`ParallelPartitioner._assign`) runs the very same functions one range after another, giving the
same assignment as the Ray path. The driver holds the ``[num_nodes]`` assignment and the part sizes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

import numpy as np
import torch

from gnndist.graph import Graph
from gnndist.memory import PeakMemory
from gnndist.partitioners.base import Partitioner, PartitionResult, fill_empty_parts
from gnndist.partitioners.jit import compiled

if TYPE_CHECKING:
    from gnndist.data.chunked import ChunkedGraph
    from gnndist.runtime.tasks import TaskGroup

OBJECTIVES = ("ldg", "fennel")


# ---------------------------------------------------------------------- kernels (numba: per-node loops)
@compiled
def _stream(indptr, nbrs, start, order, node_weight, assignment, local_part, sizes, quota, capacity, num_tasks, fennel, alpha, gamma):  # pragma: no cover - compiled
    """Places the range's nodes ``order`` (local ids) one by one; ``local_part`` (the range's parts) is updated in place.

    ``node_weight``: ``[range size, ncon]`` weights; ``sizes`` and ``quota`` ``[P, ncon]`` and ``capacity``
    ``[ncon]`` count them. A part's size in the score is its fullest constraint's, in the first constraint's units.
    """
    num_parts, ncon = sizes.shape
    scale = capacity[0] / capacity  # scale[0] is exactly 1: one constraint scores as before
    added = np.zeros((num_parts, ncon), np.int64)
    counts = np.zeros(num_parts, np.float64)
    size = np.zeros(num_parts, np.float64)
    for v in order:
        for e in range(indptr[v], indptr[v + 1]):
            i = nbrs[e] - start
            p = local_part[i] if 0 <= i < local_part.size else assignment[nbrs[e]]
            if p >= 0:
                counts[p] += 1.0
        for q in range(num_parts):
            size[q] = 0.0
            for c in range(ncon):  # every range is filling the parts at the same time
                size[q] = max(size[q], (sizes[q, c] + added[q, c] * num_tasks) * scale[c])
        best = -1
        best_score = -np.inf
        best_size = np.inf
        for q in range(num_parts):
            fits = True
            for c in range(ncon):
                fits = fits and added[q, c] + node_weight[v, c] <= quota[q, c]
            if not fits:
                continue
            if fennel:
                score = counts[q] - alpha * gamma * size[q] ** (gamma - 1.0)
            else:
                score = counts[q] * (1.0 - size[q] / capacity[0])
            if score > best_score or (score == best_score and size[q] < best_size):
                best, best_score, best_size = q, score, size[q]
        if best < 0:  # every share used up (rounding): the least filled part
            best = int(np.argmin(size))
        local_part[v] = best
        added[best] += node_weight[v]
        counts[:] = 0.0
    return local_part


@compiled
def _refine(indptr, nbrs, start, order, node_weight, assignment, local_part, quota, excess, capacity):  # pragma: no cover - compiled
    """One label-propagation sweep over the range (``order``): moves within ``quota`` (``[P, ncon]``) net arriving weight per part.

    A part's budget counts what this range moved out of it as well as in: a node leaving part ``q`` makes room
    for one arriving later in the sweep (once the range's share of ``q``'s overflow is paid off), so a part
    never grows by more than the range's share of its free capacity and yet parts at capacity can trade nodes.
    Counting arrivals alone held every round to about the imbalance's slack of moves (5 % of the nodes), and
    refinement needed four rounds where two now do (2M-node ``sbm``, 4 parts: cut 25.1 % after the cluster
    graph's partition, 18.6 % after two such rounds, 14.98 % after two net ones).

    A node of a part over capacity in a constraint it weighs in (``excess[p, c]`` > 0: this range's share of
    the overflow) moves to the best other part with room even without a gain, until the range's share of the
    overflow is gone. A move fits where every constraint stays within the part's quota.
    """
    num_parts, ncon = quota.shape
    moved_in = np.zeros((num_parts, ncon), np.int64)  # net: arrivals less departures
    counts = np.zeros(num_parts, np.int64)
    labels = np.empty(np.max(indptr[1:] - indptr[:-1]) if indptr.size > 1 else 0, assignment.dtype)  # v's neighbours' parts
    for v in order:
        first, degree = indptr[v], indptr[v + 1] - indptr[v]
        for j in range(degree):  # all read before any is counted, as in _cluster
            i = nbrs[first + j] - start
            labels[j] = local_part[i] if 0 <= i < local_part.size else assignment[nbrs[first + j]]
        for j in range(degree):
            counts[labels[j]] += 1
        current = local_part[v]
        forced = False
        for c in range(ncon):  # over in a constraint where v weighs most (of its capacity): moving v sheds the most of it
            heaviest = node_weight[v, c] > 0
            for d in range(ncon):
                heaviest = heaviest and node_weight[v, c] * capacity[d] >= node_weight[v, d] * capacity[c]
            forced = forced or (excess[current, c] > 0 and heaviest)
        best = -1 if forced else current
        for q in range(num_parts):
            if q == current or (best >= 0 and counts[q] <= counts[best]):
                continue
            fits = True
            for c in range(ncon):
                fits = fits and moved_in[q, c] + node_weight[v, c] <= quota[q, c]
            if fits:
                best = q
        if best >= 0 and best != current:
            local_part[v] = best
            moved_in[best] += node_weight[v]
            for c in range(ncon):  # a departure first pays off the range's share of its part's overflow, then makes room
                paid = min(max(excess[current, c], 0), node_weight[v, c])
                excess[current, c] -= paid
                moved_in[current, c] -= node_weight[v, c] - paid
        counts[:] = 0
    return local_part


SLOT_BITS = 7  # the small hash table of _cluster: 2**7 = 128 slots, found from a hash's top 7 bits
SMALL_DEGREE = 1 << (SLOT_BITS - 1)  # nodes up to this many neighbour entries (64) count their clusters in it: at most half full


@compiled
def _cluster(indptr, nbrs, start, order, node_weight, clusters, local_cluster, sizes, bound, salt):  # pragma: no cover - compiled
    """One size-constrained label-propagation clustering sweep: each node joins the neighbouring cluster it has
    most edges to (ties: the lower seeded hash ``(c ^ salt) * golden``), if that beats its own and the cluster
    stays within ``bound`` weight.

    ``sizes`` (``[num_nodes, ncon]``, cluster weights of the snapshot) is updated as nodes of this range move;
    ``bound`` is ``[ncon]``. A node's edges per cluster are counted in a ``2**SLOT_BITS``-slot open-addressing table (it
    stays in L1) when it has at most ``SMALL_DEGREE`` entries, else in a ``[num_nodes]`` array: counting in that
    array was a second cache miss per neighbour entry beside reading the neighbour's cluster (numba has no
    small-map type that fits here, so the table is written out). Only a candidate that would win is checked
    against ``bound``, so ``sizes`` is read once per winner, not per neighbouring cluster.

    A node's neighbour clusters are all read (into ``labels``) before any is counted: the CPU then overlaps the
    cache misses of these reads (most of them: a snapshot of 2M labels does not fit the cache), where counting
    each as it came made every miss wait behind the table updates before it. The four clustering rounds took
    8.4 -> 6.7 s on a 2M-node ``sbm`` (one process, 8 ranges; same clusters). :func:`_refine` reads the same way.
    """
    links = np.zeros(sizes.shape[0], np.int32)  # high-degree nodes: edges from v to each cluster
    touched = np.empty(sizes.shape[0], clusters.dtype)  # v's distinct neighbouring clusters, in first-seen order
    tally = np.empty(sizes.shape[0], np.int32)  # v's edges to touched[j]
    slots = 1 << SLOT_BITS
    slot_key = np.full(slots, -1, np.int64)
    slot_count = np.zeros(slots, np.int32)
    slot_of = np.empty(SMALL_DEGREE, np.int64)  # touched[j]'s slot
    golden = np.uint64(0x9E3779B97F4A7C15)  # multiplicative hashing: table slots, and a seeded pseudo-random rank per cluster
    shift = np.uint64(64 - SLOT_BITS)  # the hash's top bits: one of the slots
    salt = np.uint64(salt)
    labels = np.empty(np.max(indptr[1:] - indptr[:-1]) if indptr.size > 1 else 0, clusters.dtype)  # v's neighbours' clusters
    for v in order:
        current = local_cluster[v]
        first, degree = indptr[v], indptr[v + 1] - indptr[v]
        for j in range(degree):  # read first, counted below: see the docstring
            i = nbrs[first + j] - start
            labels[j] = local_cluster[i] if 0 <= i < local_cluster.size else clusters[nbrs[first + j]]
        small = degree <= SMALL_DEGREE
        k = 0
        for j in range(degree):
            c = labels[j]
            if small:
                h = (np.uint64(c) * golden) >> shift
                while slot_key[h] >= 0 and slot_key[h] != c:
                    h = (h + np.uint64(1)) & np.uint64(slots - 1)
                if slot_key[h] < 0:
                    slot_key[h] = c
                    slot_of[k] = h
                    touched[k] = c
                    k += 1
                slot_count[h] += 1
            else:
                if links[c] == 0:
                    touched[k] = c
                    k += 1
                links[c] += 1
        own = 0
        for j in range(k):
            tally[j] = slot_count[slot_of[j]] if small else links[touched[j]]
            if touched[j] == current:
                own = tally[j]
        best, best_links = current, own
        for j in range(k):
            c = touched[j]
            if c == current:
                continue
            if tally[j] > best_links or (best != current and tally[j] == best_links and (np.uint64(c) ^ salt) * golden < (np.uint64(best) ^ salt) * golden):
                fits = True
                for w in range(bound.size):
                    fits = fits and sizes[c, w] + node_weight[v, w] <= bound[w]
                if fits:
                    best, best_links = c, tally[j]
        if best != current:
            local_cluster[v] = best
            sizes[current] -= node_weight[v]
            sizes[best] += node_weight[v]
        for j in range(k):
            if small:
                slot_key[slot_of[j]] = -1
                slot_count[slot_of[j]] = 0
            else:
                links[touched[j]] = 0
    return local_cluster


# ---------------------------------------------------------------------- the steps, shared by both paths
def range_bounds(num_nodes: int, num_ranges: int) -> np.ndarray:
    """``[num_ranges + 1]`` starts of the node ranges (contiguous, sizes differing by at most one)."""
    return np.array([num_nodes * r // num_ranges for r in range(num_ranges + 1)], np.int64)


def node_dtype(num_nodes: int) -> np.dtype:
    """The dtype of node ids in the partitioner's arrays (neighbour lists, snapshots): int32 while ids fit.

    Half the bytes of int64: the bucketed pairs and range files written and read, and the snapshot and
    neighbour arrays the kernels read at random (the clustering rounds run about a quarter faster on a
    2M-node graph, whose 16 MB int64 snapshot no longer fits the cache).
    """
    return np.dtype(np.int32 if num_nodes <= np.iinfo(np.int32).max else np.int64)


def bucket_edges(src: np.ndarray, dst: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of the edges ``src -> dst`` (self loops dropped) as ``(node, neighbour)`` pairs grouped by the range of ``node``.

    Returns ``(node, nbr, offsets)``: range ``r``'s pairs are ``[offsets[r]:offsets[r + 1]]``, first the
    ``(dst, src)`` pairs in edge order, then the ``(src, dst)`` pairs (a counting sort on the range id: two
    passes over the edges, no concatenated copies and no argsort). Ids are :func:`node_dtype`'s.
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    return _bucket(np.ascontiguousarray(src, dtype=np.int64), np.ascontiguousarray(dst, dtype=np.int64), bounds, np.empty(0, node_dtype(int(bounds[-1]))))


@compiled
def _bucket(src, dst, bounds, like):  # pragma: no cover - compiled
    """:func:`bucket_edges`: every endpoint's range (an even-split guess, then corrected on ``bounds``), counts
    per range, then each pair written at its range's next free slot (ids of ``like``'s dtype)."""
    num_ranges = bounds.size - 1
    scale = num_ranges / max(bounds[num_ranges], 1)  # a multiplication, not a division, per endpoint
    ranges = np.empty((2, src.size), np.int32)  # [0]: dst's range, [1]: src's
    offsets = np.zeros(num_ranges + 1, np.int64)
    for e in range(src.size):
        if src[e] == dst[e]:
            continue
        for side in range(2):
            v = dst[e] if side == 0 else src[e]
            r = min(int(v * scale), num_ranges - 1)
            while bounds[r] > v:
                r -= 1
            while bounds[r + 1] <= v:
                r += 1
            ranges[side, e] = r
            offsets[r + 1] += 1
    for r in range(num_ranges):
        offsets[r + 1] += offsets[r]
    fill = offsets[:-1].copy()
    node = np.empty(offsets[num_ranges], like.dtype)
    nbr = np.empty(offsets[num_ranges], like.dtype)
    for side in range(2):
        for e in range(src.size):
            if src[e] != dst[e]:
                r = ranges[side, e]
                node[fill[r]] = dst[e] if side == 0 else src[e]
                nbr[fill[r]] = src[e] if side == 0 else dst[e]
                fill[r] += 1
    return node, nbr, offsets


@compiled
def _group(node, nbr, lo, size):  # pragma: no cover - compiled
    """Counting sort of ``(node, nbr)`` pairs by ``node - lo``: ``(indptr [size + 1], neighbours)``."""
    indptr = np.zeros(size + 1, np.int64)
    for v in node:
        indptr[v - lo + 1] += 1
    for i in range(size):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    grouped = np.empty(nbr.size, nbr.dtype)
    for e in range(node.size):
        grouped[fill[node[e] - lo]] = nbr[e]
        fill[node[e] - lo] += 1
    return indptr, grouped


def range_csr(pieces: Iterable[tuple[np.ndarray, np.ndarray]], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr [hi - lo + 1], neighbours)`` of the range's nodes from its bucketed pairs (neighbour order does not matter; ids keep their dtype)."""
    pieces = list(pieces)
    empty = np.empty(0, node_dtype(hi))
    node = np.concatenate([p[0] for p in pieces] or [empty])
    nbr = np.concatenate([p[1] for p in pieces] or [empty])
    return _group(node, nbr, lo, hi - lo)


ORDER_BLOCK = 1024  # at most this many nodes visited in id order between two random jumps (see stream_order)
ORDER_BLOCKS = 256  # at least this many blocks in a range that has the nodes: small ranges still get a seeded order


def stream_order(seed: int, index: int, size: int) -> np.ndarray:
    """The seeded order in which range ``index`` streams, clusters and refines its ``size`` nodes (local ids).

    A seeded permutation of blocks of consecutive nodes (``ORDER_BLOCK`` at most, ``ORDER_BLOCKS`` blocks at
    least), each block in id order: the kernels then read neighbour lists (and the range's own labels) from
    consecutive memory, where a permutation of single nodes made every list a cache miss. On a 2M-node
    ``sbm`` (4 parts) this took the clustering rounds from 11.6 to 7.4 CPU-s and the refinement rounds from
    5.0 to 2.1, at the same cut (14.98 %).
    """
    block = min(ORDER_BLOCK, max(1, size // ORDER_BLOCKS))
    blocks = np.random.default_rng([seed, index]).permutation(-(-size // block))
    order = (blocks[:, None] * block + np.arange(block)).ravel()
    return order[order < size]


def shares(free: np.ndarray, num_tasks: int) -> np.ndarray:
    """``[num_tasks, P, ncon]``: ``free[q, c]`` (clipped at 0) split between the tasks, the remainder to the first ones (so they sum to it)."""
    free = np.maximum(free, 0)
    base, rest = free // num_tasks, free % num_tasks
    return base[None] + (np.arange(num_tasks)[:, None, None] < rest[None])


@dataclass(frozen=True)
class Step:
    """One round for one range: what a task needs besides the range's CSR and the synchronised snapshot.

    ``kind``: ``"cluster"`` (the snapshot holds clusters), ``"stream"`` or ``"refine"`` (it holds parts).
    """

    kind: str
    index: int  # the range
    lo: int
    hi: int
    nodes: np.ndarray  # local ids to visit, in order
    sizes: np.ndarray  # [P, ncon] part sizes of the snapshot (stream, refine)
    quota: np.ndarray  # [P, ncon] this range's share of each part's free capacity (stream, refine)
    excess: np.ndarray  # [P, ncon] this range's share of each part's overflow (refine)
    capacity: np.ndarray  # [ncon] a part's capacity per constraint
    num_tasks: int
    fennel: bool
    alpha: float
    gamma: float
    bound: np.ndarray  # [ncon] largest cluster (cluster)
    salt: int  # seeds the cluster tie-break priorities (cluster)


def run_step(step: Step, indptr: np.ndarray, nbrs: np.ndarray, snapshot: np.ndarray, weights: np.ndarray, cluster_sizes: np.ndarray | None) -> np.ndarray:
    """The range's new parts (or clusters) after ``step``: its slice of ``snapshot``, updated (``weights``: every node's, ``[num_nodes, ncon]``).

    ``cluster_sizes``: the snapshot's cluster weights (:func:`round_sizes`, computed once per round, not per
    range: 20-25 ms each on 2M nodes), copied here since the sweep updates them.
    """
    local = np.array(snapshot[step.lo:step.hi])
    weight = np.ascontiguousarray(weights[step.lo:step.hi])
    if step.kind == "cluster":
        return _cluster(indptr, nbrs, step.lo, step.nodes, weight, snapshot, local, np.array(cluster_sizes), step.bound, step.salt)
    if step.kind == "stream":
        return _stream(indptr, nbrs, step.lo, step.nodes, weight, snapshot, local, step.sizes.astype(np.float64), step.quota, step.capacity.astype(np.float64), float(step.num_tasks), step.fennel, step.alpha, step.gamma)
    return _refine(indptr, nbrs, step.lo, step.nodes, weight, snapshot, local, step.quota, step.excess.copy(), step.capacity)


def round_sizes(kind: str, snapshot: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """What every range of a ``kind`` round shares besides the snapshot: a clustering round's ``[num_nodes, ncon]``
    cluster weights; None for streaming and refinement, whose ``[P, ncon]`` part sizes travel in each :class:`Step`."""
    return weighed_counts(snapshot, weights, snapshot.size) if kind == "cluster" else None


def weighed_counts(labels: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """``[size, ncon]`` int64 total weight per label and constraint (``weights``: ``[num_nodes, ncon]``; labels
    < 0, unplaced nodes, are left out)."""
    placed = labels >= 0
    return np.stack([np.bincount(labels[placed], weights=column[placed], minlength=size) for column in weights.T], axis=1).astype(np.int64)


def node_weights(balance: tuple[str, ...], degree: np.ndarray) -> np.ndarray:
    """``[num_nodes, ncon]`` int64 weights the parts balance, one column per constraint: 1 per node (``nodes``),
    the node's neighbour entries (``edges``: its in- plus out-degree, what a range holds)."""
    columns = {"nodes": lambda: np.ones(degree.size, np.int64), "edges": lambda: degree.astype(np.int64)}
    return np.stack([columns[what]() for what in balance], axis=1)


def dense_clusters(clusters: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered ``0..C-1`` in increasing order of the original ids (O(num_nodes), no sort)."""
    present = np.zeros(clusters.size, np.int64)
    present[clusters] = 1
    return (np.cumsum(present) - 1)[clusters]


def coarse_edges(lo: int, indptr: np.ndarray, nbrs: np.ndarray, dense: np.ndarray) -> Any:
    """The range's neighbour entries between clusters (``dense`` ids) summed per cluster pair: a ``[C, C]`` scipy CSR matrix (columns unsorted)."""
    import scipy.sparse as sp

    size = int(dense.max()) + 1
    starts, between = _coarse_rows(lo, indptr, nbrs, np.ascontiguousarray(dense, dtype=node_dtype(size)), size)
    rows, cols, counts = _merge_rows(starts.reshape(1, -1), np.zeros(1, np.int64), between, np.empty(0, np.int64), size, False)  # merged_rows sorts
    return sp.csr_matrix((counts, cols, rows), shape=(size, size))


@compiled
def _coarse_rows(lo, indptr, nbrs, dense, size):  # pragma: no cover - compiled
    """:func:`coarse_edges`' entries between clusters grouped by row cluster: ``(starts [size + 1], columns)``.

    A counting sort; :func:`_merge_rows` then sums each row's duplicates with a ``[size]`` marker (the cluster
    graph is small: it stays in cache). Written out rather than left to scipy, whose COO -> CSR conversion
    sorted all the entries and took most of the coarse step (4.7 of 6.3 CPU-s on a 2M-node ``sbm``).
    """
    starts = np.zeros(size + 1, np.int64)
    for v in range(indptr.size - 1):
        row = dense[lo + v]
        for e in range(indptr[v], indptr[v + 1]):
            if dense[nbrs[e]] != row:
                starts[row + 1] += 1
    for c in range(size):
        starts[c + 1] += starts[c]
    fill = starts[:-1].copy()
    between = np.empty(starts[size], dense.dtype)
    for v in range(indptr.size - 1):
        row = dense[lo + v]
        for e in range(indptr[v], indptr[v + 1]):
            col = dense[nbrs[e]]
            if col != row:
                between[fill[row]] = col
                fill[row] += 1
    return starts, between


def merged_rows(pieces: list[Any], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranges' :func:`coarse_edges` summed: ``(indptr [size + 1], columns, counts)`` (int64), each row's columns sorted.

    One pass over the pieces' entries (:func:`_merge_rows`). Adding the pieces as scipy matrices, then taking
    the linked clusters' submatrix and sorting it, took 1.0 of the coarse step's 2.4 s on a 2M-node ``sbm``.
    """
    indptrs = np.stack([piece.indptr.astype(np.int64) for piece in pieces])
    bases = np.cumsum([0] + [piece.nnz for piece in pieces[:-1]]).astype(np.int64)
    cols = np.concatenate([piece.indices for piece in pieces]).astype(np.int64)
    counts = np.concatenate([piece.data for piece in pieces]).astype(np.int64)
    return _merge_rows(indptrs, bases, cols, counts, size, True)


@compiled
def _merge_rows(indptrs, bases, cols, counts, size, sort):  # pragma: no cover - compiled
    """:func:`merged_rows` (and :func:`coarse_edges`, one piece whose entries count 1 each: ``counts`` empty): row by
    row, every piece's entries summed per column with a ``[size]`` marker, then sorted if ``sort`` (columns keep
    their dtype). Only the merged result is sorted: sorting each range's piece too cost ~0.55 CPU-s more on a
    2M-node ``sbm``, undone by the merge."""
    seen = np.full(size, -1, np.int64)  # seen[col]: where the row's entry for col is, if the row met col already
    rows = np.zeros(size + 1, np.int64)
    out_cols = np.empty(cols.size, cols.dtype)
    out_counts = np.zeros(cols.size, np.int64)
    k = 0
    for row in range(size):
        first = k
        for piece in range(indptrs.shape[0]):
            for e in range(bases[piece] + indptrs[piece, row], bases[piece] + indptrs[piece, row + 1]):
                col = cols[e]
                if seen[col] < first:
                    seen[col] = k
                    out_cols[k] = col
                    k += 1
                out_counts[seen[col]] += counts[e] if counts.size else 1
        if sort:
            order = np.argsort(out_cols[first:k])
            out_cols[first:k] = out_cols[first:k][order]
            out_counts[first:k] = out_counts[first:k][order]
        rows[row + 1] = k
    return rows, out_cols[:k].copy(), out_counts[:k].copy()


EDGELESS_GROUPS = 16  # per part: the METIS vertices the edgeless clusters are pooled into (see coarse_partition)


def coarse_partition(pieces: list[Any], dense: np.ndarray, weights: np.ndarray, num_parts: int, seed: int, imbalance: float) -> np.ndarray:
    """Partitions the cluster graph (clusters weighted by their nodes' ``weights``, edges by the entries between them) with METIS; returns every node's part.

    Clusters without an edge to another cluster (isolated nodes, or whole components inside one cluster; on a
    power-law graph often most clusters: 1.04M of 1.10M on a 2M-node rmat) cut no edge wherever they go, but
    they stall METIS's coarsening (nothing to match them with), which then partitions a coarsest graph of
    about their number (131 s of a 147 s run on that rmat). They are pooled, in id order, into
    ``EDGELESS_GROUPS * num_parts`` vertices of about equal weight: METIS still balances with their mass (so
    it may keep the connected core together), and coarsens the rest as usual.

    METIS gets half the allowed imbalance: a cluster graph's vertices are coarse, and with two constraints
    refinement moves single nodes and cannot swap them, so an overloaded part could stay overloaded (2M-node
    rmat, nodes and edges: METIS at the full 5 % left one part at 1.097x the mean neighbour entries, and
    refinement stopped at 1.064x; at 2.5 % it starts at 1.057x and ends within capacity at 67.2 % cut).
    """
    from gnndist.partitioners.adjacency import SymmetricAdjacency
    from gnndist.partitioners.multilevel import metis_part_graph

    sizes = weighed_counts(dense, weights, int(dense.max()) + 1)
    if num_parts == 1:
        return np.zeros(dense.size, np.int64)
    rows, cols, counts = merged_rows(pieces, sizes.shape[0])
    has_edges = np.diff(rows) > 0
    linked, edgeless = np.flatnonzero(has_edges), np.flatnonzero(~has_edges)
    groups = min(edgeless.size, EDGELESS_GROUPS * num_parts)
    pooled = sizes[edgeless]
    group = np.maximum(np.cumsum(pooled[:, 0]) - 1, 0) * groups // max(int(pooled[:, 0].sum()), 1)  # contiguous runs of about equal first weight
    weights = np.concatenate([sizes[linked], weighed_counts(group, pooled, groups)])
    weights = weights[:, weights.sum(axis=0) > 0] if weights.any() else np.ones((weights.shape[0], 1), np.int64)  # METIS divides by each total
    if weights.shape[0] <= num_parts:  # too few vertices to split: each its own part
        vertex_part = np.arange(weights.shape[0], dtype=np.int64)
    else:
        # symmetric: a linked cluster's neighbours are all linked; an edgeless row is empty, so the linked
        # rows' ends are the linked clusters' CSR, renumbered by their rank among the linked
        rank = np.cumsum(has_edges) - 1
        indptr = np.concatenate([[0], rows[linked + 1], np.full(groups, rows[-1])])  # the pooled vertices: no edges
        adjacency = SymmetricAdjacency(indptr, rank[cols], counts)
        vertex_part = metis_part_graph(adjacency, weights, num_parts, recursive=num_parts <= 8, seed=seed, imbalance=imbalance / 2)
    parts = np.empty(sizes.size, np.int64)
    parts[linked] = vertex_part[: linked.size]
    parts[edgeless] = vertex_part[linked.size + group]
    return parts[dense]


@dataclass(frozen=True)
class Schedule:
    """The rounds of one partitioning and the steps of each, from the synchronised snapshot."""

    bounds: np.ndarray
    weights: np.ndarray  # [num_nodes, ncon] what each node weighs in the balance, per constraint
    num_parts: int
    capacity: np.ndarray  # [ncon] int64
    fennel: bool
    alpha: float
    gamma: float
    bound: np.ndarray  # [ncon] int64
    seed: int

    def steps(self, snapshot: np.ndarray, kind: str, round_index: int, count: int) -> list[Step]:
        """One step per range for round ``round_index`` of the ``count`` rounds of ``kind``."""
        num_tasks = self.bounds.size - 1
        if kind == "cluster":
            sizes = quotas = excess = np.zeros((num_tasks, self.num_parts, self.capacity.size), np.int64)
        else:
            sizes = weighed_counts(snapshot, self.weights, self.num_parts)
            quotas = shares(self.capacity - sizes, num_tasks)
            excess = shares(sizes - self.capacity, num_tasks)
        steps = []
        for r in range(num_tasks):
            lo, hi = int(self.bounds[r]), int(self.bounds[r + 1])
            order = stream_order(self.seed, r, hi - lo)
            nodes = order[order.size * round_index // count:order.size * (round_index + 1) // count] if kind == "stream" else order
            salt = int(np.random.default_rng([self.seed, 1 << 20, round_index]).integers(1 << 62))
            steps.append(Step(kind, r, lo, hi, nodes, sizes if kind != "cluster" else sizes[r], quotas[r], excess[r], self.capacity, num_tasks, self.fennel, self.alpha, self.gamma, self.bound, salt))
        return steps


# ---------------------------------------------------------------------- Ray tasks (the chunked path)
def _range_file(scratch: Path, index: int, what: str) -> Path:
    return scratch / f"range-{index:05d}-{what}.npy"


def _bucket_file(scratch: Path, chunk: int, what: str) -> Path:
    """Edge chunk ``chunk``'s bucketed pairs (``node``, ``nbr``) and their per-range ``offsets`` (:func:`bucket_edges`)."""
    return scratch / f"bucket-c{chunk:05d}-{what}.npy"


def _remote_tasks() -> tuple[Any, ...]:
    """The Ray tasks, defined on first use (importing ``gnndist.partitioners`` does not import Ray)."""
    if not _REMOTES:
        import ray

        from gnndist.runtime.tasks import measured

        @ray.remote
        @measured
        def bucket_chunk(folder: str, chunk: int, bounds: np.ndarray, scratch: str) -> dict:
            from gnndist.data.chunked import ChunkedGraph

            block = ChunkedGraph.open(folder).edge_chunk(chunk)  # verifies the chunk's sha256
            for what, array in zip(("node", "nbr", "offsets"), bucket_edges(np.asarray(block.src), np.asarray(block.dst), bounds)):
                np.save(_bucket_file(Path(scratch), chunk, what), array)
            return {}

        @ray.remote
        @measured
        def build_range(index: int, lo: int, hi: int, num_chunks: int, scratch: str) -> dict:
            folder = Path(scratch)
            pieces = []
            for chunk in range(num_chunks):  # this range's slice of each chunk's bucketed pairs, read through a mapping
                offsets = np.load(_bucket_file(folder, chunk, "offsets"), allow_pickle=False)
                start, stop = int(offsets[index]), int(offsets[index + 1])
                pieces.append(tuple(np.load(_bucket_file(folder, chunk, what), mmap_mode="r", allow_pickle=False)[start:stop] for what in ("node", "nbr")))
            indptr, nbrs = range_csr(pieces, lo, hi)
            del pieces
            np.save(_range_file(folder, index, "indptr"), indptr)
            np.save(_range_file(folder, index, "nbrs"), nbrs)
            return {"degree": np.diff(indptr).astype(np.int32)}  # every node's neighbour entries: the balance's weights

        @ray.remote
        @measured
        def range_step(step: Step, assignment: np.ndarray, weights: np.ndarray, sizes: np.ndarray | None, scratch: str) -> dict:
            folder = Path(scratch)
            indptr = np.load(_range_file(folder, step.index, "indptr"), mmap_mode="r", allow_pickle=False)
            nbrs = np.load(_range_file(folder, step.index, "nbrs"), mmap_mode="r", allow_pickle=False)
            return {"part": run_step(step, np.asarray(indptr), np.asarray(nbrs), assignment, weights, sizes)}

        @ray.remote
        @measured
        def range_coarse_edges(index: int, lo: int, dense: np.ndarray, scratch: str) -> dict:
            indptr = np.load(_range_file(Path(scratch), index, "indptr"), allow_pickle=False)
            nbrs = np.load(_range_file(Path(scratch), index, "nbrs"), allow_pickle=False)
            return {"edges": coarse_edges(lo, indptr, nbrs, dense)}

        @ray.remote
        @measured
        def coarse_task(dense: np.ndarray, weights: np.ndarray, num_parts: int, seed: int, imbalance: float, *pieces: dict) -> dict:
            # the pieces come as arguments, which Ray resolves before the task starts: a task that waited for them
            # itself would hold a worker blocked, and Ray would start another process (paying numba's load again)
            return {"part": coarse_partition([done["edges"] for done in pieces], dense, weights, num_parts, seed, imbalance)}

        _REMOTES.extend([bucket_chunk, build_range, range_step, range_coarse_edges, coarse_task])
    return tuple(_REMOTES)


_REMOTES: list[Any] = []


# ---------------------------------------------------------------------- the partitioner
INITIALS = ("coarse", "stream")
BALANCES = (("nodes",), ("edges",), ("nodes", "edges"))


@dataclass
class ParallelPartitioner(Partitioner):
    """Parallel partitioning over node ranges in synchronised rounds: an initial assignment, then size-constrained label propagation.

    Args:
        imbalance: parts hold at most ``ceil((1 + imbalance) * total weight / num_parts)`` (default 0.05).
        balance: what a node weighs (default ``["nodes"]``: 1 each); ``["edges"]``: its neighbour entries (in- plus
            out-degree); ``["nodes", "edges"]``: both, two constraints, each part within the capacity of each. On a
            power-law graph, node balance puts most edges in one part (rmat: 36M of 42M) and with them most of
            the memory of a full-graph worker; ``["nodes", "edges"]`` spreads both. With ``initial="stream"``
            the second constraint is best-effort: refinement moves single nodes and cannot swap them.
        tasks: node ranges = tasks per round (default 8); part of the result's identity, not the cluster size.
        initial: ``"coarse"`` (default): ``cluster_rounds`` rounds of size-constrained label-propagation
            clustering (clusters of at most ``capacity / (4 * tasks)`` weight), then METIS on the cluster graph
            in one task (ParHIP's scheme with one level); ``"stream"``: ``rounds`` synchronised rounds of
            streaming LDG or Fennel (``objective``, ``gamma``).
        cluster_rounds: clustering rounds (default 3: on the 2M-node ``sbm`` and rmat a fourth round left the
            cut the same, 14.98 %, or made it worse, 68.5 % against 67.8 %, and took the assignment's time in
            one process up by 16-25 %).
        rounds: streaming rounds (default 4).
        refine_rounds: label-propagation refinement rounds (default 2).
        objective: streaming score, ``"ldg"`` (default) or ``"fennel"``.
        gamma: Fennel's size exponent (default 1.5); alpha is ``sqrt(num_parts) * m / num_nodes ** gamma``.
    """

    name: ClassVar[str] = "parallel"

    imbalance: float = 0.05
    balance: tuple[str, ...] = ("nodes",)
    tasks: int = 8
    initial: str = "coarse"
    cluster_rounds: int = 3
    rounds: int = 4
    refine_rounds: int = 2
    objective: str = "ldg"
    gamma: float = 1.5

    def __post_init__(self) -> None:
        if not self.imbalance >= 0:
            raise ValueError(f"Expected imbalance >= 0 (got {self.imbalance})")
        balance = (self.balance,) if isinstance(self.balance, str) else tuple(self.balance)
        if balance not in BALANCES:
            raise ValueError(f"Expected balance as one of {[list(b) for b in BALANCES]} (got {list(balance)})")
        self.balance = balance
        for option, least in (("tasks", 1), ("cluster_rounds", 1), ("rounds", 1), ("refine_rounds", 0)):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Expected {option} to be an integer >= {least} (got {value!r})")
        if self.initial not in INITIALS:
            raise ValueError(f"Expected initial in {list(INITIALS)} (got {self.initial!r})")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"Expected objective in {list(OBJECTIVES)} (got {self.objective!r})")
        if not self.gamma > 1:
            raise ValueError(f"Expected gamma > 1 (got {self.gamma})")

    def _schedule(self, degree: np.ndarray, num_parts: int, seed: int) -> Schedule:
        """The rounds' parameters from every node's neighbour entries ``degree`` (in- plus out-degree)."""
        num_nodes = degree.size
        num_tasks = min(self.tasks, num_nodes)
        fennel = self.objective == "fennel"
        weights = node_weights(self.balance, degree)
        total = np.maximum(weights.sum(axis=0), 1)
        capacity = np.ceil((1.0 + self.imbalance) * total / num_parts).astype(np.int64)
        return Schedule(
            bounds=range_bounds(num_nodes, num_tasks),
            weights=weights,
            num_parts=num_parts,
            capacity=capacity,
            fennel=fennel,
            alpha=math.sqrt(num_parts) * max(int(degree.sum()) / 2, 1) / float(total[0]) ** self.gamma if fennel else 0.0,
            gamma=float(self.gamma),
            bound=np.maximum(1, capacity // (4 * num_tasks)),  # all ranges may fill one cluster at once: at most a quarter part
            seed=seed,
        )

    def _drive(self, schedule: Schedule, num_nodes: int, seed: int, run_round: Callable[[list[Step], np.ndarray, np.ndarray | None], list[np.ndarray]], coarse: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The rounds, each from a synchronised snapshot; ``run_round`` runs one round's steps (tasks or a loop) with the round's :func:`round_sizes`."""

        def rounds(snapshot: np.ndarray, kind: str, count: int) -> np.ndarray:
            for index in range(count):
                steps = schedule.steps(snapshot, kind, index, count)
                for step, local in zip(steps, run_round(steps, snapshot, round_sizes(kind, snapshot, schedule.weights))):
                    snapshot[step.lo:step.hi] = local
            return snapshot

        ids = node_dtype(num_nodes)
        if self.initial == "coarse":
            clusters = rounds(np.arange(num_nodes, dtype=ids), "cluster", self.cluster_rounds)
            assignment = np.array(coarse(clusters), dtype=ids)  # a writable copy (a task result is read-only)
        else:
            assignment = rounds(np.full(num_nodes, -1, ids), "stream", self.rounds)
        return rounds(assignment, "refine", self.refine_rounds).astype(np.int64)

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> np.ndarray:
        """The in-memory path: the same steps as the Ray tasks, one range after another."""
        n = graph.num_nodes
        bounds = range_bounds(n, min(self.tasks, n))
        node, nbr, offsets = bucket_edges(graph.indices.numpy(), graph.dst().numpy(), bounds)
        csrs = [range_csr([(node[offsets[r]:offsets[r + 1]], nbr[offsets[r]:offsets[r + 1]])], int(bounds[r]), int(bounds[r + 1])) for r in range(bounds.size - 1)]
        del node, nbr
        schedule = self._schedule(np.concatenate([np.diff(indptr) for indptr, _ in csrs]), num_parts, seed)

        def run_round(steps: list[Step], snapshot: np.ndarray, sizes: np.ndarray | None) -> list[np.ndarray]:
            return [run_step(step, *csrs[step.index], snapshot, schedule.weights, sizes) for step in steps]  # all from the same snapshot

        def coarse(clusters: np.ndarray) -> np.ndarray:
            dense = dense_clusters(clusters)
            pieces = [coarse_edges(int(bounds[r]), *csrs[r], dense) for r in range(bounds.size - 1)]
            return coarse_partition(pieces, dense, schedule.weights, num_parts, seed, self.imbalance)

        return self._drive(schedule, n, seed, run_round, coarse)

    def assign_chunked(self, graph: "ChunkedGraph", num_parts: int, *, seed: int, tasks: "TaskGroup", scratch: Path) -> PartitionResult:
        """The Ray path over a chunked folder (called by ``partition_chunked``): bucketing, range CSRs, then every round as tasks.

        ``scratch`` is an empty folder every task can read and write; the driver holds the ``[num_nodes]``
        snapshot (assignment or clusters) and the part sizes.
        """
        import ray

        n = graph.num_nodes
        if not 1 <= num_parts <= n:
            raise ValueError(f"Expected num_parts in [1, {n}] (got {num_parts})")
        bucket_chunk, build_range, range_step, range_coarse_edges, coarse_task = _remote_tasks()
        started = time.perf_counter()
        with PeakMemory() as memory:
            folder, work = str(graph.directory), str(scratch)
            bounds = range_bounds(n, min(self.tasks, n))
            tasks.wait([
                tasks.submit(bucket_chunk, f"edge chunk {chunk.name} (bucketing)", folder, index, bounds, work, max_retries=0)
                for index, chunk in enumerate(graph.meta.edge_chunks)
            ])
            labels = [f"node range {int(bounds[r])}..{int(bounds[r + 1])}" for r in range(bounds.size - 1)]
            built = tasks.wait([
                tasks.submit(build_range, labels[r], r, int(bounds[r]), int(bounds[r + 1]), len(graph.meta.edge_chunks), work, max_retries=0)
                for r in range(bounds.size - 1)
            ])
            for chunk in range(len(graph.meta.edge_chunks)):
                for what in ("node", "nbr", "offsets"):
                    _bucket_file(scratch, chunk, what).unlink()
            schedule = self._schedule(np.concatenate([b["degree"] for b in built]), num_parts, seed)
            del built
            weights = ray.put(schedule.weights)

            def run_round(steps: list[Step], snapshot: np.ndarray, sizes: np.ndarray | None) -> list[np.ndarray]:
                shared, shared_sizes = ray.put(snapshot), ray.put(sizes)
                refs = [tasks.submit(range_step, f"{labels[step.index]} ({step.kind})", step, shared, weights, shared_sizes, work, max_retries=0) for step in steps]
                return [done["part"] for done in tasks.wait(refs)]

            def coarse(clusters: np.ndarray) -> np.ndarray:
                shared = ray.put(dense_clusters(clusters))
                pieces = [tasks.submit(range_coarse_edges, f"{labels[r]} (cluster graph)", r, int(bounds[r]), shared, work, max_retries=0) for r in range(bounds.size - 1)]
                label = f"cluster graph of {n} nodes (METIS, {num_parts} parts)"
                (done,) = tasks.wait([tasks.submit(coarse_task, label, shared, weights, num_parts, seed, self.imbalance, *pieces, max_retries=0)])
                return done["part"]

            assignment = self._drive(schedule, n, seed, run_round, coarse)
            for r in range(bounds.size - 1):
                for what in ("indptr", "nbrs"):
                    _range_file(scratch, r, what).unlink()
        node_part = fill_empty_parts(torch.from_numpy(assignment), num_parts)  # as Partitioner.partition does
        return PartitionResult(
            node_part=node_part, num_parts=num_parts, method=self.method_name, options=self.options(), seed=seed,
            time_s=time.perf_counter() - started, peak_memory_bytes=max(memory.peak_bytes, tasks.peak_bytes), memory_increase_bytes=memory.increase_bytes,
        )
