"""Layer-wise neighbour sampling on CSR, a hop in C on the CPU or vectorized in torch (CPU and CUDA), producing per-layer Blocks."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch
from torch import Tensor

from gnndist.block import Block, csr_offsets
from gnndist.sampling.seeds import random_seed
from gnndist.seeding import derive_seed

if TYPE_CHECKING:
    from gnndist.aggregation.native_kernel import NativeLibrary

_UNSEEN = torch.iinfo(torch.int32).max  # scratch-map entry of a node not in the current batch


@dataclass(eq=False)
class SampledBatch:
    """One sampled mini-batch: the blocks a model runs on and the nodes whose features it needs.

    Attributes:
        seeds: ``[B]`` global ids of the nodes the loss is computed on.
        input_nodes: ``[num_input]`` global ids of every node the batch touches, numbered locally
            by position: the seeds are entries ``0..B-1``, then each hop appends its new nodes.
            Row ``i`` of the first layer's input is the feature row of ``input_nodes[i]``.
        blocks: one Block per layer, in forward order: ``blocks[0]`` reads the input features (the
            outermost hop), the last block's destinations are the seeds. Destinations of every block
            are its first ``num_dst`` sources, and ``blocks[i].num_dst == blocks[i + 1].num_src``;
            the global ids of the sources of ``blocks[i]`` are ``input_nodes[: blocks[i].num_src]``.
        edge_types: with a typed sampler, per block ``[blocks[i].num_edges]`` the edge type of every
            edge (in the block's CSR order); else None.
    """

    seeds: Tensor
    input_nodes: Tensor
    blocks: list[Block]
    edge_types: list[Tensor] | None = None

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def to(self, device: torch.device | str) -> "SampledBatch":
        """The same batch with every tensor on ``device``."""
        edge_types = None if self.edge_types is None else [types.to(device) for types in self.edge_types]
        return SampledBatch(self.seeds.to(device), self.input_nodes.to(device), [block.to(device) for block in self.blocks], edge_types)


@contextmanager
def _intra_op_threads(num_threads: int | None) -> Iterator[None]:
    """Runs the block with ``num_threads`` torch intra-op threads (None: unchanged), then restores the setting."""
    previous = torch.get_num_threads()
    if num_threads is None or num_threads == previous:
        yield
        return
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


Fanout = int | tuple[int, ...]
"""One hop's fanout: neighbours per destination, or (typed sampler) neighbours per destination and edge type."""


def _check_fanouts(fanouts: Sequence[Fanout], num_edge_types: int) -> list[Fanout]:
    """Every hop's fanout checked; with edge types, a hop's int applies to every type and a tuple gives one per type."""
    if isinstance(fanouts, (str, bytes)) or not isinstance(fanouts, Sequence):
        raise TypeError(f"Expected 'fanouts' as a sequence of ints, one per layer (got {fanouts!r})")
    fanouts = [tuple(fanout) if isinstance(fanout, Sequence) and not isinstance(fanout, (str, bytes)) else fanout for fanout in fanouts]
    if not fanouts:
        raise ValueError(f"Expected 'fanouts' with at least one layer (got {fanouts})")
    for hop in fanouts:
        if isinstance(hop, tuple) and (num_edge_types == 1 or len(hop) != num_edge_types):
            raise ValueError(f"Expected a hop's fanout per edge type only with 'edge_type', one per type ({num_edge_types}) (got {hop} in {fanouts})")
        for fanout in hop if isinstance(hop, tuple) else (hop,):
            if isinstance(fanout, bool) or not isinstance(fanout, int):
                raise TypeError(f"Expected every fanout to be an int (got {fanout!r} in {fanouts})")
            if fanout == 0 or fanout < -1:
                raise ValueError(f"Expected every fanout to be >= 1, or -1 for all neighbours (got {fanout} in {fanouts})")
    return fanouts


class NeighborSampler:
    """Samples a fixed number of in-neighbours per node, hop by hop, from a CSR over incoming edges.

    With the torch kernel every hop is a handful of tensor operations over all rows at once (no Python loop
    over nodes), so the same code runs on CPU and CUDA; on the CPU the native kernel runs the same hop in C. Without replacement, a node with more than ``fanout``
    in-neighbours gets a uniformly random subset by Robert Floyd's algorithm, run for all rows at
    once: ``fanout`` steps of ``O(rows * fanout)`` work each, whatever the degree, so power-law hubs
    cost no more than other nodes and no random key is drawn per edge. Sampled nodes are numbered
    locally through a dense scratch map of size ``num_nodes`` (only the touched entries are reset).

    With ``edge_type``, every destination's in-edges are grouped by edge type and each group is sampled
    on its own (DGL's semantics on a heterogeneous graph): a hop picks up to ``fanout`` in-neighbours per
    destination *and edge type*, the same rows-at-once code running over (destination, edge type) rows.

    A sampler is not thread-safe (it owns the scratch map and the random generator): use one per
    thread. With a ``seed``, the same calls give the same batches in every run and process on the
    same kind of device; :meth:`set_epoch` restarts the random stream at a point fixed by (seed, epoch).

    Args:
        indptr: ``[num_nodes + 1]`` CSR offsets over incoming edges (a :class:`~gnndist.graph.Graph`'s).
        indices: ``[num_edges]`` source node of every in-edge.
        fanouts: neighbours per node for each hop, in hop order: ``fanouts[0]`` is for the seeds'
            neighbours (the last layer of the model). ``-1`` takes all neighbours (also with ``replace``).
            With ``edge_type``, a hop's int is per edge type, or a tuple gives each type's (type order).
        replace: sample with replacement (exactly ``fanout`` picks per node with neighbours) instead
            of distinct neighbours (``min(fanout, degree)`` picks).
        seed: seed of the random generator; None draws one from torch's default generator.
        device: where sampling runs and the batches live; default: the device of ``indptr``.
        src_degree: ``[num_nodes]`` whole-graph in-degree of every node; when given, every block's
            ``src_degree`` holds it for its sources (GCN normalisation), else blocks get None.
        edge_weight: ``[num_edges]`` optional weight of every in-edge, carried into the blocks.
        num_threads: torch intra-op threads while sampling on the CPU, restored afterwards. Default 1:
            the operations are small, so more threads add mostly synchronisation, and on a busy
            machine a parallel region that waits for a descheduled thread costs ~10x (measured).
            None leaves torch's setting alone.
        edge_type: ``[num_edges]`` optional edge type ``0..num_edge_types-1`` of every in-edge: sample per
            (destination, edge type); every batch then carries its edges' types (``SampledBatch.edge_types``).
        num_edge_types: the number of edge types (default: ``edge_type.max() + 1``).
        kernel: how a hop runs. ``"native"``: gnndist's C hop (:mod:`gnndist.aggregation.native_kernel`), one call
            per hop that draws, numbers and prefetches the rows' CSR entries ahead (CPU, no edge types);
            ``"torch"``: the tensor operations above (any device, edge types); ``"auto"`` (default): native where it
            applies and the library loads, else torch. Both sample the same distribution, with random streams of
            their own: a seed gives the same batches again with the same kernel.
    """

    def __init__(
        self,
        indptr: Tensor,
        indices: Tensor,
        fanouts: Sequence[int],
        *,
        replace: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
        src_degree: Tensor | None = None,
        edge_weight: Tensor | None = None,
        num_threads: int | None = 1,
        edge_type: Tensor | None = None,
        num_edge_types: int | None = None,
        kernel: str = "auto",
    ):
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)):
            raise TypeError(f"Expected 'num_threads' to be an int or None (got {num_threads!r})")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"Expected 'num_threads' >= 1 or None (got {num_threads})")
        indptr, indices = torch.as_tensor(indptr), torch.as_tensor(indices)
        for name, tensor in (("indptr", indptr), ("indices", indices)):
            if tensor.dim() != 1 or tensor.is_floating_point() or tensor.dtype == torch.bool:
                raise TypeError(f"Expected '{name}' as a 1-D integer tensor (got dtype {tensor.dtype}, shape {tuple(tensor.shape)})")
        if indptr.numel() < 2 or int(indptr[-1]) != indices.numel():
            raise ValueError(f"Expected 'indptr' of shape [num_nodes + 1] ending at num_edges={indices.numel()} (got shape {tuple(indptr.shape)})")
        self.device = torch.device(device) if device is not None else indptr.device
        self.num_threads = num_threads if self.device.type == "cpu" else None
        self.num_nodes = indptr.numel() - 1
        self.replace = replace
        self.indptr = indptr.to(self.device, torch.long).contiguous()  # contiguous: the native kernel reads raw arrays
        self.indices = indices.to(self.device, torch.long).contiguous()
        self.degree = self.indptr.diff()
        for name, tensor, size in (("src_degree", src_degree, self.num_nodes), ("edge_weight", edge_weight, indices.numel())):
            if tensor is not None and tuple(tensor.shape) != (size,):
                raise ValueError(f"Expected '{name}' of shape [{size}] (got {tuple(tensor.shape)})")
        self.src_degree = src_degree.to(self.device) if src_degree is not None else None
        self.edge_weight = edge_weight.to(self.device) if edge_weight is not None else None
        self.edge_type = None
        self.num_edge_types = 1
        self.row_indptr = self.indptr  # sampled rows: destinations, or (destination, edge type) pairs
        if edge_type is not None:
            self._group_by_type(torch.as_tensor(edge_type).to(self.device, torch.long), num_edge_types)
        self.row_degree = self.row_indptr.diff()
        self.fanouts = _check_fanouts(fanouts, self.num_edge_types)
        # float32 draws resolve offsets exactly only below 2**24 neighbours
        max_degree = int(self.row_degree.max()) if self.row_degree.numel() else 0
        self._uniform_dtype = torch.float32 if max_degree < 2**24 else torch.float64
        self._offset_dtype = torch.int32 if max_degree < 2**31 - 2 else torch.long
        if self.num_nodes >= _UNSEEN:
            raise ValueError(f"Expected fewer than {_UNSEEN} nodes (got {self.num_nodes})")
        # int32 keeps the scratch map small enough to stay in cache
        self._local_id = torch.full((self.num_nodes,), _UNSEEN, dtype=torch.int32, device=self.device)
        self.seed = random_seed() if seed is None else int(seed)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self._native = self._native_library(kernel)
        self.kernel = "torch" if self._native is None else "native"

    def _native_library(self, kernel: str) -> "NativeLibrary | None":
        """The native library when ``kernel`` asks for it (or ``"auto"`` and it applies and loads), else None."""
        if kernel not in ("auto", "native", "torch"):
            raise ValueError(f"Expected 'kernel' to be 'auto', 'native' or 'torch' (got {kernel!r})")
        applies = self.device.type == "cpu" and self.edge_type is None
        if kernel == "torch" or (kernel == "auto" and not applies):
            return None
        if not applies:
            raise ValueError(f"The native sampling kernel runs on the CPU without edge types (got device {self.device}, {self.num_edge_types} edge types): use kernel='torch' or 'auto'")
        from gnndist.aggregation.native_kernel import load_native_library, native_library

        return native_library() if kernel == "auto" else load_native_library()  # kernel="native": raises saying why it cannot build

    def _group_by_type(self, edge_type: Tensor, num_edge_types: int | None) -> None:
        """Orders every row's in-edges by edge type (stable) and numbers row ``(v, t)`` as ``v * num_edge_types + t``."""
        if tuple(edge_type.shape) != (self.indices.numel(),):
            raise ValueError(f"Expected 'edge_type' of shape [{self.indices.numel()}] (got {tuple(edge_type.shape)})")
        num_types = num_edge_types if num_edge_types is not None else (int(edge_type.max()) + 1 if edge_type.numel() else 1)
        if isinstance(num_types, bool) or not isinstance(num_types, int) or num_types < 1:
            raise ValueError(f"Expected 'num_edge_types' >= 1 (got {num_edge_types!r})")
        if edge_type.numel() and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_types):
            raise ValueError(f"Expected edge types in [0, {num_types - 1}] (got {int(edge_type.min())} to {int(edge_type.max())})")
        row = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), self.degree)
        key = row * num_types + edge_type
        order = torch.argsort(key, stable=True)
        self.indices = self.indices.index_select(0, order)
        self.edge_weight = self.edge_weight.index_select(0, order) if self.edge_weight is not None else None
        self.edge_type = edge_type.index_select(0, order)
        self.num_edge_types = num_types
        self.row_indptr = csr_offsets(torch.bincount(key, minlength=self.num_nodes * num_types))

    @classmethod
    def from_graph(cls, graph, fanouts: Sequence[int], *, with_src_degree: bool = True, **kwargs) -> "NeighborSampler":
        """A sampler over ``graph``'s in-edges (and edge weights), with whole-graph in-degrees in every block.

        Args:
            graph: a :class:`~gnndist.graph.Graph`.
            fanouts: as in the constructor.
            with_src_degree: set ``src_degree`` of every block (needed by GCN's normalisation).
            **kwargs: ``replace``, ``seed``, ``device``, ``num_threads`` as in the constructor.
        """
        src_degree = graph.in_degrees() if with_src_degree else None
        return cls(graph.indptr, graph.indices, fanouts, src_degree=src_degree, edge_weight=graph.edge_weight, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Restarts the random stream at the point fixed by ``(seed, epoch)``."""
        self.generator.manual_seed(derive_seed(self.seed, epoch))

    def sample(self, seeds: Tensor) -> SampledBatch:
        """Samples the blocks of one mini-batch.

        Args:
            seeds: ``[B]`` distinct global node ids (B >= 1).

        Returns:
            A :class:`SampledBatch` with ``len(fanouts)`` blocks.
        """
        seeds = self._check_seeds(seeds)
        with _intra_op_threads(self.num_threads):
            return self._sample(seeds)

    def _sample(self, seeds: Tensor) -> SampledBatch:
        """Expands ``seeds`` hop by hop; the scratch map is clean again on return or error."""
        local_id = self._local_id
        seed_ids = torch.arange(seeds.numel(), dtype=torch.int32, device=self.device)
        local_id.index_copy_(0, seeds, seed_ids)
        if not bool((local_id.index_select(0, seeds) == seed_ids).all()):
            local_id.index_fill_(0, seeds, _UNSEEN)
            raise ValueError(f"Expected distinct seed ids (got {seeds.numel() - torch.unique(seeds).numel()} repeated)")
        input_nodes = seeds
        blocks, edge_types = [], []
        for fanout in self.fanouts:
            num_dst = input_nodes.numel()
            if self._native is not None:
                counts, edge_ids, sources, new_nodes = self._native_hop(seeds, input_nodes, fanout)
            else:
                counts, edge_ids = self._sample_hop(input_nodes, fanout)
                sources = self.indices.index_select(0, edge_ids)
                self._check_room(seeds, input_nodes, sources.numel())
                # number unseen sources num_dst, num_dst + 1, ... in order of first appearance
                position = torch.arange(num_dst, num_dst + sources.numel(), dtype=torch.int32, device=self.device)
                local_id.scatter_reduce_(0, sources, position, "amin")
                new_nodes = sources.masked_select(local_id.index_select(0, sources) == position)
                local_id.index_copy_(0, new_nodes, torch.arange(num_dst, num_dst + new_nodes.numel(), dtype=torch.int32, device=self.device))
                sources = local_id.index_select(0, sources).long()
            block_indptr = csr_offsets(counts)
            edge_weight = self.edge_weight.index_select(0, edge_ids) if self.edge_weight is not None else None
            input_nodes = torch.cat([input_nodes, new_nodes])
            if self.edge_type is not None:
                edge_types.append(self.edge_type.index_select(0, edge_ids))
            blocks.append(Block(block_indptr, sources, input_nodes.numel(), None, edge_weight))
        local_id.index_fill_(0, input_nodes, _UNSEEN)
        if self.src_degree is not None:
            degree = self.src_degree.index_select(0, input_nodes)
            for block in blocks:
                block.src_degree = degree[: block.num_src]
        return SampledBatch(seeds, input_nodes, blocks[::-1], edge_types[::-1] if self.edge_type is not None else None)

    def _check_room(self, seeds: Tensor, input_nodes: Tensor, num_picks: int) -> None:
        """Refuses a hop whose picks could number past the scratch map's ``int32`` range (the map is cleaned first)."""
        if input_nodes.numel() + num_picks >= _UNSEEN:
            self._local_id.index_fill_(0, input_nodes, _UNSEEN)
            raise ValueError(f"A batch of {seeds.numel()} seeds reaches {input_nodes.numel() + num_picks} sampled edges, over the {_UNSEEN} a batch can number: use smaller batches or fanouts")

    def _native_hop(self, seeds: Tensor, nodes: Tensor, fanout: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One hop in the native kernel: ``[n]`` picks per node, the picks' edge ids and local source ids, and the new nodes.

        The picks per node follow from the degrees alone, so the outputs are allocated before the one call.
        """
        counts = self._picks(self.row_degree.index_select(0, nodes), fanout)
        total = int(counts.sum())
        self._check_room(seeds, nodes, total)
        edge_ids, sources, new_nodes = (torch.empty(total, dtype=torch.long) for _ in range(3))
        state = int(torch.randint(0, 2**62, (), generator=self.generator))  # the hop's stream, from the sampler's generator
        found = self._native.sample_hop(self.indptr, self.indices, nodes, fanout, self.replace, state, self._local_id, nodes.numel(), edge_ids, sources, new_nodes)
        return counts, edge_ids, sources, new_nodes[:found]

    def _check_seeds(self, seeds: Tensor) -> Tensor:
        seeds = torch.as_tensor(seeds, device=self.device)
        if seeds.dim() != 1 or seeds.is_floating_point() or seeds.dtype == torch.bool:
            raise TypeError(f"Expected 'seeds' as a 1-D integer tensor (got dtype {seeds.dtype}, shape {tuple(seeds.shape)})")
        if seeds.numel() == 0:
            raise ValueError("Expected at least one seed (got 'seeds' empty)")
        low, high = (int(v) for v in torch.aminmax(seeds))
        if low < 0 or high >= self.num_nodes:
            raise ValueError(f"Expected seed ids in [0, {self.num_nodes - 1}] (got {low if low < 0 else high})")
        return seeds.long().contiguous()

    def _sample_hop(self, nodes: Tensor, fanout: Fanout) -> tuple[Tensor, Tensor]:
        """Picks in-edges of ``nodes``; returns ``[n]`` picks per node and the ``[sum]`` edge ids, node by node.

        A typed sampler samples the rows ``(v, t)`` of every node ``v`` and edge type ``t`` at once, one call
        per distinct fanout value; the picks of several calls are merged back into node order (stable).
        """
        types = self.num_edge_types
        if types == 1:
            return self._sample_rows(nodes, fanout)
        per_type = fanout if isinstance(fanout, tuple) else (fanout,) * types
        counts, edge_ids, owners = torch.zeros(nodes.numel(), dtype=torch.long, device=self.device), [], []
        for value in sorted(set(per_type)):
            chosen = torch.tensor([t for t in range(types) if per_type[t] == value], device=self.device)
            row_counts, picked = self._sample_rows((nodes[:, None] * types + chosen).reshape(-1), value)
            node_counts = row_counts.view(nodes.numel(), chosen.numel()).sum(1)
            counts += node_counts
            edge_ids.append(picked)
            owners.append(torch.repeat_interleave(torch.arange(nodes.numel(), device=self.device), node_counts))
        if len(edge_ids) == 1:
            return counts, edge_ids[0]
        return counts, torch.cat(edge_ids).index_select(0, torch.argsort(torch.cat(owners), stable=True))

    def _sample_rows(self, rows: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """Picks entries of ``rows`` of the row CSR; returns ``[n]`` picks per row and the ``[sum]`` edge ids, row by row."""
        start = self.row_indptr.index_select(0, rows)
        degree = self.row_degree.index_select(0, rows)
        counts = self._picks(degree, fanout)
        if fanout == -1:
            row_start = torch.cumsum(degree, 0) - degree
            total = int(row_start[-1] + degree[-1])
            edge_ids = torch.arange(total, device=self.device) + torch.repeat_interleave(start - row_start, degree, output_size=total)
            return counts, edge_ids
        if self.replace:
            draws = torch.rand(rows.numel(), fanout, generator=self.generator, device=self.device, dtype=self._uniform_dtype)
            offsets = torch.minimum((draws * degree[:, None]).long(), (degree - 1)[:, None])
            has_neighbours = degree > 0
            keep = None if bool(has_neighbours.all()) else has_neighbours[:, None].expand(-1, fanout)
        else:
            offsets = self._distinct_offsets(degree, fanout).t()
            keep = None if bool((degree >= fanout).all()) else (offsets >= 0)
        edge_ids = start[:, None] + offsets
        return counts, (edge_ids.reshape(-1) if keep is None else edge_ids.masked_select(keep))

    def _picks(self, degree: Tensor, fanout: int) -> Tensor:
        """Picks per row of ``degree`` in-edges, on either kernel: all (``fanout`` -1), ``fanout`` from a row with any
        (with replacement), else ``min(degree, fanout)``."""
        if fanout == -1:
            return degree
        return (degree > 0).long() * fanout if self.replace else degree.clamp(max=fanout)

    def _distinct_offsets(self, degree: Tensor, fanout: int) -> Tensor:
        """``[fanout, n]`` distinct offsets in ``[0, degree)`` per column, negative where ``degree < fanout``.

        Floyd's algorithm, for every row at once: step ``s`` draws ``t`` uniformly from ``[0, i]``
        with ``i = degree - fanout + s`` and keeps ``t`` unless an earlier step kept it, else ``i``.
        Each kept value marks the later draws equal to it as taken (cheaper than searching the
        earlier picks at every step). Rows with ``degree <= fanout`` keep ``i`` at every step: all
        their offsets, in CSR order.
        """
        step = torch.arange(fanout, dtype=self._offset_dtype, device=self.device)[:, None]
        last = (degree.to(self._offset_dtype) - fanout)[None, :] + step
        draws = torch.rand(fanout, degree.numel(), generator=self.generator, device=self.device, dtype=self._uniform_dtype)
        offsets = torch.minimum((draws * (last + 1)).to(self._offset_dtype), last)
        offsets = torch.where(degree > fanout, offsets, last)
        taken = torch.zeros_like(offsets, dtype=torch.bool)
        for s in range(fanout):
            if s:
                torch.where(taken[s], last[s], offsets[s], out=offsets[s])
            if s + 1 < fanout:
                taken[s + 1 :] |= offsets[s + 1 :] == offsets[s]
        return offsets
