"""``task.name=link``: link prediction, modelled on PyG's ``RandomLinkSplit`` and OGB's link evaluators.

The edge split is done once, before partitioning (:meth:`LinkTask.prepare`): undirected pairs are shuffled
(seeded) into train/val/test; the val/test pairs leave the message-passing graph, so every mode trains
on the same new graph (its own fingerprint, hence its own partition directory and checkpoint identity).
Training scores each positive pair against ``negatives`` corrupted pairs ``(src, w)``, ``w`` drawn by
the negative sampler from the whole graph; evaluation uses negatives fixed once per split.

Distributed, a worker scores the pairs whose destination it owns (and their negatives); rows of
endpoints owned elsewhere are gathered from their owners through the partition book
(:class:`PartRows`: one all-to-all of ids, then the halo exchange's autograd function, so gradients
flow back to the owners). Training negatives of epoch ``e`` are drawn for all training pairs from one
stream ``(seed, NEGATIVE, e)`` and each worker keeps its own pairs' rows: a pair gets the same negatives
in every process, which is what makes distributed training equal single-process training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnndist.comm import Communicator, ExchangeRoute, exchange_halo
from gnndist.device import to_device
from gnndist.graph import Graph
from gnndist.partition import Part, PartitionBook
from gnndist.registry import DECODERS, NEGATIVE_SAMPLERS
from gnndist.seeding import Stream, generator
from gnndist.tasks.base import BatchObjective, Evaluation, Objective, Task, TaskGraph
from gnndist.tasks.ranking import hits_at_k, mean_reciprocal_rank, roc_auc

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LinkEdges:
    """The positive pairs of one evaluation split and their fixed negatives.

    Attributes:
        pos: ``[2, P]`` (src, dst) positive pairs (``src < dst``).
        neg_dst: ``[P, k]`` destinations of the negatives ``(pos[0, i], neg_dst[i, j])``.
    """

    pos: Tensor
    neg_dst: Tensor


@dataclass(frozen=True)
class LinkSplit:
    """A link task's targets: training pairs, evaluation pairs with negatives, and degrees for the sampler.

    Attributes:
        train: ``[2, P]`` training pairs (``src < dst``), every one in the message-passing graph both ways
            it was in the dataset.
        val, test: held-out pairs (absent from the message-passing graph) and their negatives.
        degree: ``[N]`` in-degree in the message-passing graph (the degree-biased sampler's weights).
    """

    train: Tensor
    val: LinkEdges
    test: LinkEdges
    degree: Tensor


def split_edges(graph: Graph, fractions: Sequence[float], seed: int) -> tuple[Graph, Tensor, Tensor, Tensor]:
    """Splits the undirected pairs of ``graph`` into train/val/test (``fractions``), like PyG's ``RandomLinkSplit``.

    A pair ``{u, v}`` (``u != v``) stands for its edges in both directions, which stay together. Val and
    test take ``floor(f * pairs)`` pairs; train takes the rest when the fractions sum to 1, else
    ``floor(f_train * pairs)`` and the pairs left over stay in the message-passing graph without being
    scored (PyG's ``disjoint_train_ratio``). Self-loops stay in the graph and are never scored.

    Returns:
        ``(message-passing graph, train [2, P_train], val [2, P_val], test [2, P_test])``, pairs as ``src < dst``.

    Raises:
        ValueError: no training pairs or an empty test set, naming ``task.split`` and the pair count.
    """
    n = graph.num_nodes
    src, dst = graph.indices, graph.dst()
    low, high = torch.minimum(src, dst), torch.maximum(src, dst)
    key = low * n + high
    pairs = torch.unique(key[low != high])
    order = pairs[torch.randperm(pairs.numel(), generator=generator(seed, Stream.LINK_SPLIT))]
    f_train, f_val, f_test = fractions
    n_val, n_test = int(f_val * pairs.numel()), int(f_test * pairs.numel())
    rest = pairs.numel() - n_val - n_test
    n_train = rest if f_train + f_val + f_test >= 1 - 1e-9 else min(rest, int(f_train * pairs.numel()))
    if n_test == 0:
        raise ValueError(f"task.split={list(fractions)} leaves an empty test set: {f_test} of the graph's {pairs.numel()} undirected edges is less than one")
    if n_train == 0:
        raise ValueError(f"task.split={list(fractions)} leaves no edges for training: the graph has {pairs.numel()} undirected edges (self-loops aside)")
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test : n_val + n_test + n_train]
    keep = ~torch.isin(key, torch.cat([val, test]))
    weight = graph.edge_weight[keep] if graph.edge_weight is not None else None
    message_passing = Graph.from_edge_index(graph.edge_index()[:, keep], n, edge_weight=weight, num_classes=graph.num_classes or None, **graph.node_data())
    as_pairs = lambda keys: torch.stack([keys // n, keys % n])  # noqa: E731
    return message_passing, as_pairs(train), as_pairs(val), as_pairs(test)


class LinkTask(Task):
    """Link prediction: binary cross-entropy of positive pairs against sampled negatives; AUC, Hits@K, MRR.

    Args:
        split: train/val/test fractions of the undirected edges (sum <= 1, test > 0); default 0.85/0.05/0.10.
        negatives: negatives per positive pair (>= 1), in training and in the fixed evaluation sets.
        negative_sampler: how training negatives are drawn (``gnndist.registry.NEGATIVE_SAMPLERS``):
            ``uniform`` or ``degree``; evaluation negatives are always uniform (as OGB's).
        decoder: edge scorer on the encoder's rows (``gnndist.registry.DECODERS``): ``dot`` or ``mlp``.
        hits_k: the K of Hits@K (OGB's definition).
    """

    name: ClassVar[str] = "link"
    headline: ClassVar[str] = "auc"
    extra_hops: ClassVar[int] = 1  # a pair's source is a neighbour of the owned destination: sampled around too

    def __init__(self, split: Sequence[float] = (0.85, 0.05, 0.10), negatives: int = 1, negative_sampler: str = "uniform", decoder: str = "dot", hits_k: int = 50):
        check_split(split)
        if isinstance(negatives, bool) or not isinstance(negatives, int) or negatives < 1:
            raise ValueError(f"task.negatives must be an integer >= 1 (got {negatives!r})")
        if isinstance(hits_k, bool) or not isinstance(hits_k, int) or hits_k < 1:
            raise ValueError(f"task.hits_k must be an integer >= 1 (got {hits_k!r})")
        for key, registry, value in (("negative_sampler", NEGATIVE_SAMPLERS, negative_sampler), ("decoder", DECODERS, decoder)):
            if value not in registry:
                raise ValueError(f"task.{key}={value!r} is not a known {registry.kind}; available: {', '.join(registry.available())}")
        self.split, self.negatives, self.hits_k, self.decoder = tuple(float(f) for f in split), negatives, hits_k, decoder
        self.sample: Callable[..., Tensor] = NEGATIVE_SAMPLERS.get(negative_sampler)

    def output_width(self, num_classes: int, hidden: int) -> int:
        return hidden

    def prepare(self, graph: Graph, seed: int) -> TaskGraph:
        message_passing, train, val, test = split_edges(graph, self.split, seed)
        degree = message_passing.in_degrees()
        from gnndist.tasks.negatives import uniform

        fixed = lambda pos, stream: LinkEdges(pos, uniform(pos.size(1), self.negatives, degree, generator(seed, Stream.LINK_SPLIT, stream)))  # noqa: E731
        return TaskGraph(message_passing, LinkSplit(train, fixed(val, 1), fixed(test, 2), degree))

    def whole_graph(self, graph: Graph, targets: LinkSplit, device: torch.device, seed: int) -> "LinkObjective":
        return LinkObjective(self, targets, WholeGraphRows(), None, seed)

    def part(self, part: Part, source: Any, targets: LinkSplit, comm: Communicator, device: torch.device, seed: int) -> "LinkObjective":
        book = source.load_book()
        mine = lambda pos: book.node_part.index_select(0, pos[1]) == part.part_id  # noqa: E731
        return LinkObjective(self, targets, PartRows(book, part, comm, device), mine, seed, comm)


    def minibatch(self, part: Part, book: PartitionBook | None, targets: LinkSplit, device: torch.device, seed: int, rank: int) -> "LinkBatches":
        mine = torch.arange(targets.train.size(1)) if book is None else (book.node_part.index_select(0, targets.train[1]) == part.part_id).nonzero().flatten()
        return LinkBatches(self, targets.train[:, mine], device, seed, rank)


def check_split(split: Sequence[float]) -> None:
    """Three fractions in [0, 1] summing to at most 1, with training and test edges."""
    fractions = list(split)
    if len(fractions) != 3 or any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1 for f in fractions):
        raise ValueError(f"task.split must be three fractions [train, val, test] in [0, 1] (got {fractions!r})")
    if sum(fractions) > 1 + 1e-9:
        raise ValueError(f"task.split fractions must sum to at most 1 (got {fractions} summing to {sum(fractions):g})")
    if fractions[0] == 0 or fractions[2] == 0:
        raise ValueError(f"task.split leaves {'no edges for training' if fractions[0] == 0 else 'an empty test set'} (got {fractions})")


RowTable = Callable[[Tensor], Tensor]
"""``table(global_ids) -> [n, F]``: output rows of nodes whose ids were given when the table was built."""


class WholeGraphRows:
    """Every node's rows are here, in global id order: a table is the rows themselves."""

    def table(self, h: Tensor, ids: Tensor) -> RowTable:
        return lambda query: h.index_select(0, query.to(h.device))


class PartRows:
    """A worker's owned rows, plus any other node's rows fetched from its owner (by the partition book).

    :meth:`table` is collective (every worker calls it, with its own ids): one all-to-all tells each owner
    which of its rows to send, then :func:`~gnndist.comm.exchange_halo` moves them, so gradients of the
    fetched rows are summed back into their owners' rows as a halo's are.
    """

    def __init__(self, book: PartitionBook, part: Part, comm: Communicator, device: torch.device):
        self.book, self.rank, self.comm, self.device = book, part.part_id, comm, device
        self.owned_ids = part.owned_global_ids

    def table(self, h_owned: Tensor, ids: Tensor) -> RowTable:
        ids = torch.unique(ids)
        owner, local = self.book.to_local(ids)
        remote = (owner != self.rank).nonzero().flatten()
        order = torch.argsort(owner[remote], stable=True)
        remote_ids, remote_owner, remote_local = ids[remote][order], owner[remote][order], local[remote][order]
        parts = self.book.num_parts
        recv_counts = torch.bincount(remote_owner, minlength=parts)
        send_counts = self.comm.all_to_all(recv_counts, [1] * parts, [1] * parts)
        send_indices = self.comm.all_to_all(remote_local, recv_counts.tolist(), send_counts.tolist())
        route = ExchangeRoute(send_indices.to(self.device), send_counts.tolist(), recv_counts.tolist())
        rows = torch.cat([h_owned, exchange_halo(h_owned, route, self.comm)])
        known, position = torch.sort(torch.cat([self.owned_ids, remote_ids]))
        return lambda query: rows.index_select(0, position[torch.searchsorted(known, query)].to(rows.device))


class LinkObjective(Objective):
    """Scores the pairs this trainer is given (``mine``: all, or a worker's by destination) and their negatives.

    The loss is ``BCE(pos) / P + BCE(neg) / (P * k)`` over all ``P`` training pairs of all workers (each
    worker adds its share; the sum is the single-process loss). Evaluation scores are placed at their
    pairs' positions in whole-split arrays and summed over workers (each position is filled by one), so
    every worker computes the metrics on exactly the single-process scores.
    """

    def __init__(self, task: LinkTask, split: LinkSplit, rows: WholeGraphRows | PartRows, mine: Callable[[Tensor], Tensor] | None, seed: int, comm: Communicator | None = None):
        self.task, self.split, self.rows, self.seed, self.comm = task, split, rows, seed, comm
        select = lambda pos: torch.arange(pos.size(1)) if mine is None else mine(pos).nonzero().flatten()  # noqa: E731
        self.index = {"train": select(split.train), "val": select(split.val.pos), "test": select(split.test.pos)}

    def _scores(self, model: torch.nn.Module, h: Tensor, pos: Tensor, neg_dst: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``[p]`` of the pairs ``pos`` and ``[p, k]`` of their negatives ``(pos[0], neg_dst)``."""
        src, dst = pos
        table = self.rows.table(h, torch.cat([src, dst, neg_dst.flatten()]))
        h_src = table(src)
        pos_logits = model.decode(h_src, table(dst))
        k = neg_dst.size(1)
        neg_logits = model.decode(h_src.repeat_interleave(k, dim=0), table(neg_dst.flatten()))
        return pos_logits, neg_logits.view(-1, k)

    def loss(self, model: torch.nn.Module, h: Tensor, epoch: int) -> Tensor:
        split, k, index = self.split, self.task.negatives, self.index["train"]
        total = split.train.size(1)
        negatives = self.task.sample(total, k, split.degree, generator(self.seed, Stream.NEGATIVE, epoch))
        pos_logits, neg_logits = self._scores(model, h, split.train[:, index], negatives.index_select(0, index))
        pos_loss = F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits), reduction="sum") / total
        neg_loss = F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits), reduction="sum") / (total * k)
        return pos_loss + neg_loss

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, h: Tensor) -> Evaluation:
        values: dict[str, float | None] = {}
        for name in ("val", "test"):
            edges: LinkEdges = getattr(self.split, name)
            index = self.index[name]
            pos_logits, neg_logits = self._scores(model, h, edges.pos[:, index], edges.neg_dst.index_select(0, index))
            scores = torch.zeros(edges.pos.size(1), 1 + edges.neg_dst.size(1), dtype=torch.float64, device=h.device)
            scores[index.to(h.device)] = torch.cat([pos_logits.view(-1, 1), neg_logits], dim=1).double()
            if self.comm is not None:
                self.comm.all_reduce_sum(scores)
            pos, neg = scores[:, 0].cpu(), scores[:, 1:].cpu()
            empty = pos.numel() == 0
            values[f"{name}_auc"] = None if empty else roc_auc(pos, neg)
            values[f"{name}_hits@{self.task.hits_k}"] = None if empty else hits_at_k(pos, neg, self.task.hits_k)
            values[f"{name}_mrr"] = None if empty else mean_reciprocal_rank(pos, neg)
        return Evaluation(values)


@dataclass(frozen=True)
class LinkBatch:
    """A batch's pairs as positions among its seed nodes: ``src``, ``dst`` ``[B]`` and the negatives' ``neg_dst`` ``[B, k]``."""

    src: Tensor
    dst: Tensor
    neg_dst: Tensor


class LinkBatches(BatchObjective):
    """Mini-batches of training pairs: the seeds are their endpoints and their negatives' destinations.

    Negatives are drawn (``task.negative_sampler``, stream ``(seed, rank, NEGATIVE, epoch)``) among the nodes
    the worker can sample around: its owned nodes and their neighbours (ring 1 of its sampling graph, built
    one hop deeper for link tasks). A mini-batch worker has no sampling graph around the rest of the graph,
    so unlike full-graph training its negatives do not reach every node.

    Args:
        task: the link task (negatives per pair, sampler, decoder).
        pairs: ``[2, P]`` global ids of this worker's training pairs (its owned destinations).
    """

    items_name = "training edges"

    def __init__(self, task: LinkTask, pairs: Tensor, device: torch.device, seed: int, rank: int):
        self.task, self.pairs, self.device, self.seed, self.rank = task, pairs, device, seed, rank
        self.items = torch.arange(pairs.size(1))
        self.set_epoch(0)

    def attach(self, local: Any) -> None:
        self.known, self.position = torch.sort(local.global_ids)
        self.num_candidates = local.num_owned + (local.ring_sizes[0] if local.ring_sizes else 0)
        self.candidate_degree = local.in_degree[: self.num_candidates]

    def set_epoch(self, epoch: int) -> None:
        self.generator = generator(self.seed, self.rank, Stream.NEGATIVE, epoch)

    def _local(self, global_ids: Tensor) -> Tensor:
        at = torch.searchsorted(self.known, global_ids).clamp_(max=self.known.numel() - 1)
        missing = self.known[at] != global_ids
        if bool(missing.any()):
            raise ValueError(f"Node {int(global_ids[missing][0])} of a training pair is not in the worker's sampling graph (is the graph directed? link tasks expect both directions of an edge)")
        return self.position[at]

    def seed_nodes(self, items: Tensor) -> tuple[Tensor, LinkBatch]:
        src, dst = self.pairs[:, items]
        k, count = self.task.negatives, items.numel()
        negatives = self.task.sample(count, k, self.candidate_degree, self.generator)  # local ids: candidates are 0..n-1
        nodes, inverse = torch.unique(torch.cat([self._local(src), self._local(dst), negatives.flatten()]), return_inverse=True)
        inverse = to_device(inverse, self.device)
        return nodes, LinkBatch(inverse[:count], inverse[count : 2 * count], inverse[2 * count :].view(count, k))

    def loss(self, model: torch.nn.Module, h: Tensor, target: LinkBatch) -> tuple[Tensor, int]:
        """``BCE(pos) + BCE(neg) / k`` summed over the batch: divided by a step's pairs it is the full-graph loss's form."""
        k = target.neg_dst.size(1)
        h_src = h.index_select(0, target.src)
        pos_logits = model.decode(h_src, h.index_select(0, target.dst))
        neg_logits = model.decode(h_src.repeat_interleave(k, dim=0), h.index_select(0, target.neg_dst.flatten()))
        pos_loss = F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits), reduction="sum")
        neg_loss = F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits), reduction="sum")
        return pos_loss + neg_loss / k, target.src.numel()
