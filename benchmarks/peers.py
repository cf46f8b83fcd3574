"""The peer libraries' side of the benchmarks: PyG and DGL trained the plain way, in a child process.

Started by file path (``python peers.py KIND SPEC_JSON``, see :func:`child.peer_command`) with this
environment's python (PyG) or the DGL environment's (DGL 2.1, torch 2.2), where gnndist is not
installed: so this file imports only the standard library, torch, numpy, the peer library and
:mod:`child` (found beside it). The graph comes in an ``.npz`` file written by :func:`write_graph`.

Kinds:
    fullgraph: a 2-layer GCN or GraphSAGE on the whole graph (PyG on ``edge_index`` or a CSR
        ``adj_t``; DGL ``GraphConv``/``SAGEConv``) on ``spec["device"]`` (PyG on CPU or CUDA: model
        and data moved there; DGL's environment has no CUDA); requests ``epoch``, ``evaluate`` and
        ``cuda_peak``.
    dgl_minibatch: DGL's ``NeighborSampler`` + ``DataLoader``: ``sample``/``gather`` epochs (sampling
        throughput) and GraphSAGE mini-batch training (``reset``, ``train``, ``evaluate``).
    dgl_link: DGL's link-prediction loop (``as_edge_prediction_sampler``, uniform negatives, dot scores):
        ``reset``, ``train``, ``scores`` (the test pairs' logits, written to an ``.npz``).
    dgl_hetero: DGL's heterogeneous ``NeighborSampler`` + ``DataLoader`` and an R-GCN of ``HeteroGraphConv``
        over per-relation ``GraphConv``: ``train`` and ``evaluate``; the graph is a typed ``.npz``
        (``gnndist.data.npz``), read here with numpy alone.

:class:`PyGSAGE` is not a child: the mini-batch benchmark trains it in its own process on the batches
of gnndist's sampler (so both sides train on the same samples, on the same device).
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

if __package__:
    from gnndist.benchmarks.child import serve
    from gnndist.benchmarks.timing import run_timed
else:  # run by path: child.py and timing.py sit beside this file
    from child import serve
    from timing import run_timed


def write_graph(graph, path, **extra: np.ndarray) -> None:
    """Writes ``graph`` (a :class:`gnndist.graph.Graph`) as the ``.npz`` every peer reads: CSC
    ``indptr``/``indices``, ``x``, ``y``, the split masks, ``train_ids``/``test_ids``, plus ``extra`` arrays."""
    arrays = {"indptr": graph.indptr, "indices": graph.indices, "x": graph.x, "y": graph.y}
    arrays.update({f"{split}_mask": getattr(graph, f"{split}_mask") for split in ("train", "val", "test")})
    arrays.update(train_ids=graph.train_mask.nonzero().flatten(), test_ids=graph.test_mask.nonzero().flatten())
    np.savez(path, **{key: value.numpy() for key, value in arrays.items()}, **extra)


def sage_weights(convs) -> dict[str, np.ndarray]:
    """gnndist's ``sage`` parameters (its PyG ``SAGEConv`` layers ``convs``) under the names :func:`dgl_sage`
    reads (``conv{i}_neigh_weight`` = ``lin_l``, ``conv{i}_self_weight`` = ``lin_r``, ``conv{i}_bias``), as
    arrays for :func:`write_graph`'s extras: so a DGL peer starts from gnndist's initial parameters."""
    weights = {}
    for i, conv in enumerate(convs):
        weights.update({f"conv{i}_neigh_weight": conv.lin_l.weight, f"conv{i}_self_weight": conv.lin_r.weight, f"conv{i}_bias": conv.lin_l.bias})
    return {name: value.detach().numpy() for name, value in weights.items()}


def arrays_of(npz: str) -> dict[str, torch.Tensor]:
    with np.load(npz, allow_pickle=False) as data:
        return {key: torch.from_numpy(data[key]) for key in data.files}


def _epoch_times(start: float, start_cpu: float) -> dict[str, float]:
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu}


def dgl_graph(indptr: torch.Tensor, indices: torch.Tensor):
    import dgl

    return dgl.graph(("csc", (indptr, indices, torch.arange(indices.numel()))), num_nodes=indptr.numel() - 1)


def block_edge_index(indptr: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """PyG's ``[2, num_edges]`` ``edge_index`` (source row, destination row) of CSR ``indptr``/``indices``
    over incoming edges (a whole graph, or a sampled block whose destinations are its first sources)."""
    dst = torch.repeat_interleave(torch.arange(indptr.numel() - 1, device=indptr.device), indptr.diff().long())
    return torch.stack([indices.long(), dst])


# ------------------------------------------------------------------------------------------ full graph
class _TwoLayers(torch.nn.Module):
    """dropout, conv, ReLU, dropout, conv: the model every full-graph contender trains."""

    def __init__(self, conv1, conv2, dropout: float, dgl: bool):
        super().__init__()
        self.conv1, self.conv2, self.dropout, self.dgl = conv1, conv2, dropout, dgl

    def _conv(self, conv, graph, h):
        return conv(graph, h) if self.dgl else conv(h, graph)

    def forward(self, x, graph):
        h = F.dropout(x, self.dropout, self.training)
        h = self._conv(self.conv1, graph, h).relu()
        h = F.dropout(h, self.dropout, self.training)
        return self._conv(self.conv2, graph, h)


class FullGraphPeer:
    """A PyG or DGL model trained on the whole graph: Adam, cross-entropy on the training nodes.

    Spec keys: library ("pyg" | "dgl"), variant (pyg: "edge_index" | "csr"), model ("gcn" | "sage"),
    npz, hidden, dropout, lr, weight_decay, seed, device ("cpu" | "cuda[:N]"; DGL: cpu only).
    """

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.device = torch.device(spec.get("device", "cpu"))
        arrays = {key: value.to(self.device) for key, value in arrays_of(spec["npz"]).items()}
        indptr, indices = arrays["indptr"], arrays["indices"]
        num_nodes, num_classes, num_features = indptr.numel() - 1, int(arrays["y"].max()) + 1, arrays["x"].size(1)
        self.x, self.y = arrays["x"], arrays["y"]
        self.masks = {split: arrays[f"{split}_mask"] for split in ("train", "val", "test")}
        self.train_index = self.masks["train"].nonzero().flatten()
        self.train_labels = self.y[self.train_index]
        torch.manual_seed(spec["seed"])
        build = self._build_pyg if spec["library"] == "pyg" else self._build_dgl
        self.version = build(indptr, indices, num_nodes, num_features, num_classes)
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])

    def _build_pyg(self, indptr, indices, num_nodes, num_features, num_classes) -> str:
        import torch_geometric
        from torch_geometric.nn import GCNConv, SAGEConv

        if self.spec["variant"] == "edge_index":
            self.graph = block_edge_index(indptr, indices)
        else:
            self.graph = torch.sparse_csr_tensor(indptr, indices, torch.ones(indices.numel(), device=self.device), size=(num_nodes, num_nodes))
        if self.spec["model"] == "gcn":
            make = lambda i, o: GCNConv(i, o, cached=True)  # noqa: E731  (normalisation computed once, like gnndist's)
        else:
            make = lambda i, o: SAGEConv(i, o, aggr="mean")  # noqa: E731
        hidden = self.spec["hidden"]
        self.model = _TwoLayers(make(num_features, hidden), make(hidden, num_classes), self.spec["dropout"], dgl=False)
        return f"torch_geometric {torch_geometric.__version__}"

    def _build_dgl(self, indptr, indices, num_nodes, num_features, num_classes) -> str:
        import dgl
        from dgl.nn import GraphConv, SAGEConv

        graph = dgl_graph(indptr, indices)
        if self.spec["model"] == "gcn":
            graph = dgl.add_self_loop(graph)
            make = lambda i, o: GraphConv(i, o, norm="both")  # noqa: E731
        else:
            make = lambda i, o: SAGEConv(i, o, "mean")  # noqa: E731
        graph.create_formats_()
        self.graph = graph
        hidden = self.spec["hidden"]
        self.model = _TwoLayers(make(num_features, hidden), make(hidden, num_classes), self.spec["dropout"], dgl=True)
        return f"dgl {dgl.__version__}"

    def epoch(self, epoch: int) -> dict[str, float]:
        """One training epoch: forward, backward, Adam step; wall and CPU seconds (the GPU's work included) and the loss."""
        loss, seconds, cpu_seconds = run_timed(lambda: self._train_step(epoch), self.device)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "loss": loss.item()}

    def _train_step(self, epoch: int) -> torch.Tensor:
        torch.manual_seed(self.spec["seed"] * 1_000_003 + epoch)
        self.model.train()
        self.optimizer.zero_grad()
        logits = self.model(self.x, self.graph)
        loss = F.cross_entropy(logits[self.train_index], self.train_labels)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def cuda_peak(self) -> dict[str, int | None]:
        """Peak bytes of tensors on the GPU since the start (what ``gnndist.memory.peak_cuda_bytes`` reads); None on the CPU."""
        if self.device.type != "cuda":
            return {"bytes": None}
        torch.cuda.synchronize(self.device)
        return {"bytes": torch.cuda.max_memory_allocated(self.device)}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        predicted = self.model(self.x, self.graph).argmax(dim=-1)
        return {f"{split}_acc": float((predicted[mask] == self.y[mask]).float().mean()) for split, mask in self.masks.items()}


def serve_fullgraph(spec: dict[str, Any]) -> None:
    peer = FullGraphPeer(spec)
    info = {"version": peer.version, "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(peer.device)}
    serve(info, {"epoch": peer.epoch, "evaluate": peer.evaluate, "cuda_peak": peer.cuda_peak})


# ------------------------------------------------------------------------------------------ mini-batch (DGL)
class DGLMiniBatchPeer:
    """DGL's sampler and a mean-SAGEConv GraphSAGE (gnndist's ``sage``: dropout on every layer's input).

    Spec keys: npz (``indptr``, ``indices``, ``x``, ``y``, ``train_ids``, ``test_ids`` and optionally
    gnndist's initial weights ``conv{i}_neigh_weight`` / ``conv{i}_self_weight`` / ``conv{i}_bias``),
    batch_size, hidden, dropout, lr, weight_decay. Fanouts arrive in hop order (the seeds' neighbours first).
    """

    def __init__(self, spec: dict[str, Any]):
        import dgl

        self.dgl, self.spec = dgl, spec
        self.arrays = arrays_of(spec["npz"])
        graph = dgl_graph(self.arrays["indptr"], self.arrays["indices"])
        graph.ndata["feat"] = self.arrays["x"]
        graph.ndata["label"] = self.arrays["y"]
        graph.create_formats_()
        self.graph = graph
        self.models: dict[tuple, tuple] = {}

    def _loader(self, fanouts: list[int], **sampler_options: Any):
        layer_fanouts = list(reversed(fanouts))  # DGL lists fanouts per layer, input layer first
        sampler = self.dgl.dataloading.NeighborSampler(layer_fanouts, **sampler_options)
        return self.dgl.dataloading.DataLoader(self.graph, self.arrays["train_ids"], sampler, batch_size=self.spec["batch_size"], shuffle=True, drop_last=False)

    def _seed(self, epoch: int) -> None:
        torch.manual_seed(epoch)
        self.dgl.seed(epoch)

    def sample(self, fanouts: list[int], epoch: int = 0, gather: bool = False) -> dict[str, float]:
        """One epoch of sampling (and of gathering the input features when ``gather``)."""
        self._seed(epoch)
        loader = self._loader(fanouts, prefetch_node_feats=["feat"] if gather else None)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _, _, blocks in loader:
            if gather:
                blocks[0].srcdata["feat"]
        return _epoch_times(start, start_cpu)

    def gather(self, fanouts: list[int], epoch: int = 0) -> dict[str, float]:
        return self.sample(fanouts, epoch, gather=True)

    def reset(self, fanouts: list[int], epoch: int = 0) -> dict[str, int]:
        """A fresh model and optimizer for ``fanouts``, starting from gnndist's initial weights when given."""
        x, y = self.arrays["x"], self.arrays["y"]
        model = dgl_sage(self.arrays, x.size(1), self.spec["hidden"], int(y.max()) + 1, len(fanouts), self.spec["dropout"])
        self.models[tuple(fanouts)] = (model, torch.optim.Adam(model.parameters(), lr=self.spec["lr"], weight_decay=self.spec["weight_decay"]))
        return {"parameters": sum(p.numel() for p in model.parameters())}

    def train(self, fanouts: list[int], epoch: int = 0) -> dict[str, float]:
        """One training epoch over the training seeds; wall and CPU seconds and the mean loss."""
        self._seed(epoch)
        model, optimizer = self.models[tuple(fanouts)]
        loader = self._loader(fanouts, prefetch_node_feats=["feat"], prefetch_labels=["label"])
        model.train()
        start, start_cpu = time.perf_counter(), time.process_time()
        total, steps = 0.0, 0
        for _, _, blocks in loader:
            logits = model(blocks, blocks[0].srcdata["feat"])
            loss = F.cross_entropy(logits, blocks[-1].dstdata["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
            steps += 1
        return {**_epoch_times(start, start_cpu), "loss": total / steps}

    def evaluate(self, fanouts: list[int], epoch: int = 0) -> dict[str, float]:
        """Test accuracy of the ``fanouts`` model on the whole graph (full neighbourhoods)."""
        model, _ = self.models[tuple(fanouts)]
        return {"test_acc": full_graph_accuracy(model, self.graph, self.graph.ndata["feat"], self.graph.ndata["label"], self.arrays["test_ids"])}


def dgl_sage(weights: dict[str, torch.Tensor], num_features: int, hidden: int, num_classes: int, layers: int, dropout: float) -> "_SAGE":
    """DGL's mean-``SAGEConv`` GraphSAGE shaped like gnndist's ``sage`` (dropout on every layer's input).

    Starts from ``weights`` where they hold gnndist's parameters (``conv{i}_neigh_weight`` = PyG
    ``lin_l``, ``conv{i}_self_weight`` = ``lin_r``, ``conv{i}_bias``) of matching shapes, else from
    DGL's initialisation under seed 0.
    """
    from dgl.nn import SAGEConv

    torch.manual_seed(0)
    widths = [num_features] + [hidden] * (layers - 1) + [num_classes]
    model = _SAGE([SAGEConv(widths[i], widths[i + 1], "mean") for i in range(layers)], dropout)
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            neigh = weights.get(f"conv{i}_neigh_weight")
            if neigh is not None and tuple(neigh.shape) == tuple(conv.fc_neigh.weight.shape):
                conv.fc_neigh.weight.copy_(neigh)
                conv.fc_self.weight.copy_(weights[f"conv{i}_self_weight"])
                conv.fc_self.bias.copy_(weights[f"conv{i}_bias"])
    return model


@torch.no_grad()
def full_graph_accuracy(model: torch.nn.Module, graph, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> float:
    """Accuracy of ``model`` on nodes ``ids`` of the whole DGL ``graph`` (full neighbourhoods, eval mode)."""
    model.eval()
    logits = model(graph, x)
    return float((logits[ids].argmax(1) == y[ids]).float().mean())


class _SAGE(torch.nn.Module):
    def __init__(self, convs: list, dropout: float):
        super().__init__()
        self.convs, self.dropout = torch.nn.ModuleList(convs), dropout

    def forward(self, blocks, x):
        h = x
        for i, conv in enumerate(self.convs):
            h = F.dropout(h, self.dropout, self.training)
            h = conv(blocks[i] if isinstance(blocks, list) else blocks, h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return h


class PyGSAGE(torch.nn.Module):
    """PyG's mean ``SAGEConv`` stacked the way gnndist's ``sage`` is (dropout on every layer's input, ReLU
    between layers), run on sampled blocks as PyG ``edge_index`` per hop or on a whole graph."""

    def __init__(self, widths: list[int], dropout: float):
        from torch_geometric.nn import SAGEConv

        super().__init__()
        self.convs = torch.nn.ModuleList(SAGEConv(widths[i], widths[i + 1], aggr="mean") for i in range(len(widths) - 1))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, hops: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
        """``hops``: per layer, in forward order, ``(edge_index, num_dst)`` (destinations are the first sources)."""
        h = x
        for i, (conv, (edge_index, num_dst)) in enumerate(zip(self.convs, hops)):
            h = F.dropout(h, self.dropout, self.training)
            h = conv((h, h[:num_dst]), edge_index, size=(h.size(0), num_dst))
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return h


# ------------------------------------------------------------------------------------------ link prediction (DGL)
def edge_ids(indptr: torch.Tensor, indices: torch.Tensor):
    """``find(src, dst) -> [n]`` edge ids of pairs in the graph of CSR ``indptr``/``indices`` over incoming
    edges, numbered as :func:`dgl_graph` numbers them (positions in ``indices``). Raises ValueError naming
    the first pair that is not an edge."""
    n = indptr.numel() - 1
    dst = torch.repeat_interleave(torch.arange(n), indptr.diff().long())
    keys, order = torch.sort(indices.long() * n + dst)

    def find(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        query = src.long() * n + dst.long()
        at = torch.searchsorted(keys, query).clamp_(max=max(keys.numel() - 1, 0))
        missing = (keys[at] != query).nonzero().flatten()
        if missing.numel():
            first = int(missing[0])
            raise ValueError(f"({int(src[first])}, {int(dst[first])}) is not an edge of the graph ({missing.numel()} of {query.numel()} pairs are not)")
        return order[at]

    return find


class DGLLinkPeer:
    """DGL's link-prediction mini-batch loop, as in DGL's ``examples/pytorch/link_pred``: an
    ``as_edge_prediction_sampler`` over a ``NeighborSampler`` with ``negative_sampler.Uniform(k)``, a
    ``DataLoader`` over the training edge ids, GraphSAGE (:func:`dgl_sage`), dot-product scores, binary
    cross-entropy summed as gnndist's ``LinkBatches.loss`` (``BCE(pos) + BCE(neg) / k``, over the batch's positives).

    Spec keys: npz (the message-passing graph as :func:`write_graph` writes it, plus ``train_pairs`` ``[2, P]``
    (one direction of every training edge), ``test_pos`` ``[2, T]``, ``test_neg_dst`` ``[T, k]`` and
    optionally gnndist's initial weights :func:`sage_weights`), fanouts (hop order), batch_size, hidden,
    dropout, lr, weight_decay, negatives (``k``), exclude (``"reverse_id"``: a batch's positive edges and their
    reverses are left out of its sampled neighbourhoods, as DGL's example does; ``"none"``: kept, as gnndist does).
    """

    def __init__(self, spec: dict[str, Any]):
        import dgl

        if spec["exclude"] not in ("reverse_id", "none"):
            raise ValueError(f"exclude must be 'reverse_id' or 'none' (got {spec['exclude']!r})")
        self.dgl, self.spec = dgl, spec
        self.arrays = arrays_of(spec["npz"])
        indptr, indices = self.arrays["indptr"], self.arrays["indices"]
        graph = dgl_graph(indptr, indices)
        graph.ndata["feat"] = self.arrays["x"]
        graph.create_formats_()
        self.graph = graph
        find = edge_ids(indptr, indices)
        self.train_eids = find(*self.arrays["train_pairs"])
        src, dst = graph.edges(order="eid")
        self.reverse_eids = find(dst, src) if spec["exclude"] == "reverse_id" else None
        self.reset()

    def reset(self) -> dict[str, int]:
        """A fresh model and optimizer, from gnndist's initial weights when given."""
        hidden = self.spec["hidden"]
        self.model = dgl_sage(self.arrays, self.arrays["x"].size(1), hidden, hidden, len(self.spec["fanouts"]), self.spec["dropout"])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.spec["lr"], weight_decay=self.spec["weight_decay"])
        return {"parameters": sum(p.numel() for p in self.model.parameters()), "train_edges": self.train_eids.numel()}

    def _loader(self):
        dataloading = self.dgl.dataloading
        sampler = dataloading.as_edge_prediction_sampler(
            dataloading.NeighborSampler(list(reversed(self.spec["fanouts"])), prefetch_node_feats=["feat"]),  # DGL lists fanouts input layer first
            exclude="reverse_id" if self.reverse_eids is not None else None,
            reverse_eids=self.reverse_eids,
            negative_sampler=dataloading.negative_sampler.Uniform(self.spec["negatives"]),
        )
        return dataloading.DataLoader(self.graph, self.train_eids, sampler, batch_size=self.spec["batch_size"], shuffle=True, drop_last=False)

    def train(self, epoch: int = 0) -> dict[str, float]:
        """One epoch over the training edges; wall and CPU seconds, the mean step loss and the steps."""
        torch.manual_seed(epoch)
        self.dgl.seed(epoch)
        model, optimizer, k = self.model, self.optimizer, self.spec["negatives"]
        model.train()
        start, start_cpu = time.perf_counter(), time.process_time()
        total, steps = 0.0, 0
        for _, pair_graph, negative_graph, blocks in self._loader():
            h = model(blocks, blocks[0].srcdata["feat"])
            pos = _dot(h, *pair_graph.edges())
            neg = _dot(h, *negative_graph.edges())
            loss_sum = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="sum") + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="sum") / k
            loss = loss_sum / pos.numel()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
            steps += 1
        return {**_epoch_times(start, start_cpu), "loss": total / max(steps, 1), "steps": steps}

    @torch.no_grad()
    def scores(self, out: str) -> dict[str, str]:
        """Writes to ``out`` (an ``.npz``) the logits of the test pairs (``pos`` ``[T]``) and of their fixed
        negatives (``neg`` ``[T, k]``) under full-neighbourhood inference, for the parent to rank."""
        self.model.eval()
        h = self.model(self.graph, self.graph.ndata["feat"])
        src, dst = self.arrays["test_pos"]
        neg_dst = self.arrays["test_neg_dst"]
        pos = _dot(h, src, dst)
        neg = _dot(h, src.repeat_interleave(neg_dst.size(1)), neg_dst.flatten()).view(neg_dst.shape)
        np.savez(out, pos=pos.numpy(), neg=neg.numpy())
        return {"scores": out}


def _dot(h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``[E]`` inner products of the rows of ``h`` at ``src`` and ``dst`` (gnndist's ``dot`` decoder)."""
    return (h.index_select(0, src.long()) * h.index_select(0, dst.long())).sum(dim=-1)


# ------------------------------------------------------------------------------------ heterogeneous (DGL)
def read_typed_npz(npz: str) -> tuple[dict[tuple[str, str, str], torch.Tensor], dict[str, dict[str, torch.Tensor]], str]:
    """A typed ``.npz`` (``gnndist.data.npz``'s heterogeneous variant) without gnndist: ``edge_index`` per
    ``(src, relation, dst)``, ``{type: {field: tensor}}`` (``num_nodes``, ``x``, ``y``, masks) and the target type."""
    with np.load(npz, allow_pickle=False) as data:
        node_types = [str(name) for name in data["node_types"]]
        edge_types = [tuple(str(part) for part in row) for row in data["edge_types"]]
        target = str(data["target"])
        arrays = {key: torch.from_numpy(data[key]) for key in data.files if "/" in key}  # the names above are strings
    nodes = {t: {key.split("/", 1)[1]: value for key, value in arrays.items() if key.startswith(f"{t}/")} for t in node_types}
    return {edge_type: arrays[f"{'__'.join(edge_type)}/edge_index"] for edge_type in edge_types}, nodes, target


class _HeteroRGCN(torch.nn.Module):
    """gnndist's ``rgcn`` written with DGL modules: featured types through a ``Linear`` to ``hidden``, featureless
    types embedded at ``hidden``, dropout on every layer's input (ReLU first after layer 0); per layer a
    ``HeteroGraphConv`` summing one mean ``GraphConv`` (``norm="right"``, no bias) per relation, plus one root
    ``Linear`` (weight and bias shared by all types, as R-GCN's self-loop).

    Args:
        widths: ``{type: feature width}`` (0: featureless); num_nodes: ``{type: rows}`` (embedding sizes).
        relations: every ``(src, relation, dst)``; relation names must be unique (``HeteroGraphConv`` keys).
        hidden, out, layers, dropout: as gnndist's ``model.hidden``, the classes, ``model.layers``, ``model.dropout``.
    """

    def __init__(self, widths: dict[str, int], num_nodes: dict[str, int], relations: list[tuple[str, str, str]], hidden: int, out: int, layers: int, dropout: float):
        from dgl.nn import GraphConv, HeteroGraphConv

        super().__init__()
        names = [relation for _, relation, _ in relations]
        if len(set(names)) != len(names):
            raise ValueError(f"Relation names must be unique for HeteroGraphConv (got {names})")
        self.project = torch.nn.ModuleDict({t: torch.nn.Linear(width, hidden) for t, width in widths.items() if width})
        self.embed = torch.nn.ModuleDict({t: torch.nn.Embedding(num_nodes[t], hidden) for t, width in widths.items() if not width})
        sizes = [hidden] * layers + [out]
        self.convs = torch.nn.ModuleList(
            HeteroGraphConv({name: GraphConv(sizes[i], sizes[i + 1], norm="right", bias=False, allow_zero_in_degree=True) for name in names}, aggregate="sum") for i in range(layers)
        )
        self.roots = torch.nn.ModuleList(torch.nn.Linear(sizes[i], sizes[i + 1]) for i in range(layers))
        self.relations, self.dropout = relations, dropout

    def load_gnndist(self, weights: dict[str, torch.Tensor]) -> None:
        """Copies gnndist's initial ``rgcn`` parameters (:func:`rgcn_weights`' names), so both sides start alike."""
        with torch.no_grad():
            for t, linear in self.project.items():
                linear.weight.copy_(weights[f"project/{t}/weight"])
                linear.bias.copy_(weights[f"project/{t}/bias"])
            for t, embedding in self.embed.items():
                embedding.weight.copy_(weights[f"embedding/{t}"])
            for i, (conv, root) in enumerate(zip(self.convs, self.roots)):
                for edge_type in self.relations:
                    conv.mods[edge_type[1]].weight.copy_(weights[f"conv{i}/{'__'.join(edge_type)}"])
                root.weight.copy_(weights[f"conv{i}/root"].t())
                root.bias.copy_(weights[f"conv{i}/bias"])

    def forward(self, graphs: list, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``graphs``: one DGL block (or the whole graph) per layer; ``inputs``: features or node ids per type."""
        h = {t: F.dropout(self.project[t](rows) if t in self.project else self.embed[t](rows), self.dropout, self.training) for t, rows in inputs.items()}
        for i, (graph, conv, root) in enumerate(zip(graphs, self.convs, self.roots)):
            if i:
                h = {t: F.dropout(F.relu(rows), self.dropout, self.training) for t, rows in h.items()}
            messages = conv(graph, h)
            h = {t: root(h[t][: graph.num_dst_nodes(t)]) + messages[t] if t in messages else root(h[t][: graph.num_dst_nodes(t)]) for t in graph.dsttypes if t in h and graph.num_dst_nodes(t)}
        return h


def rgcn_weights(model) -> dict[str, np.ndarray]:
    """gnndist's ``rgcn`` (:class:`gnndist.models.hetero.RGCN`) parameters under the names
    :meth:`_HeteroRGCN.load_gnndist` reads (relation weights combined from bases or blocks)."""
    weights = {f"project/{t}/{name}": p for t, linear in model.project.items() for name, p in linear.named_parameters()}
    weights.update({f"embedding/{t}": embedding.weight for t, embedding in model.embeddings.items()})
    for i, conv in enumerate(model.convs):
        relations = model.relation_weights(i)
        weights.update({f"conv{i}/{'__'.join(edge_type)}": relations[r] for r, edge_type in enumerate(model.schema.edge_types)})
        weights.update({f"conv{i}/root": conv.root, f"conv{i}/bias": conv.bias})
    return {name: value.detach().numpy() for name, value in weights.items()}


class DGLHeteroPeer:
    """DGL's heterogeneous mini-batch loop: ``NeighborSampler`` (fanout per relation per hop) + ``DataLoader`` over
    the target type's training nodes, :class:`_HeteroRGCN`, cross-entropy, Adam.

    Spec keys: npz (typed), weights (an ``.npz`` of :func:`rgcn_weights`, or None: DGL's initialisation under
    seed 0), fanouts (hop order: the seeds' neighbours first), batch_size, hidden, layers, dropout, lr, weight_decay.
    """

    def __init__(self, spec: dict[str, Any]):
        import dgl

        self.dgl, self.spec = dgl, spec
        edges, self.nodes, self.target = read_typed_npz(spec["npz"])
        num_nodes = {t: int(data["num_nodes"]) for t, data in self.nodes.items()}
        self.graph = dgl.heterograph({edge_type: (index[0], index[1]) for edge_type, index in edges.items()}, num_nodes_dict=num_nodes)
        self.graph.create_formats_()
        target = self.nodes[self.target]
        self.train_ids, self.test_ids = (target[f"{split}_mask"].nonzero().flatten() for split in ("train", "test"))
        widths = {t: data["x"].size(1) if "x" in data else 0 for t, data in self.nodes.items()}
        torch.manual_seed(0)
        self.model = _HeteroRGCN(widths, num_nodes, list(edges), spec["hidden"], int(target["num_classes"]), spec["layers"], spec["dropout"])
        if spec.get("weights"):
            self.model.load_gnndist(arrays_of(spec["weights"]))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])

    def _inputs(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Layer 0's rows of the nodes ``ids``: features of featured types, the ids of featureless ones (embedded)."""
        return {t: self.nodes[t]["x"].index_select(0, rows) if "x" in self.nodes[t] else rows for t, rows in ids.items() if rows.numel()}

    def train(self, epoch: int = 0) -> dict[str, float]:
        """One epoch over the target type's training nodes; wall and CPU seconds, steps and the mean loss."""
        torch.manual_seed(epoch)
        self.dgl.seed(epoch)
        sampler = self.dgl.dataloading.NeighborSampler(list(reversed(self.spec["fanouts"])))  # DGL lists fanouts input layer first
        loader = self.dgl.dataloading.DataLoader(self.graph, {self.target: self.train_ids}, sampler, batch_size=self.spec["batch_size"], shuffle=True, drop_last=False)
        labels = self.nodes[self.target]["y"]
        self.model.train()
        start, start_cpu = time.perf_counter(), time.process_time()
        total, steps = 0.0, 0
        for input_nodes, output_nodes, blocks in loader:
            logits = self.model(blocks, self._inputs(input_nodes))[self.target]
            loss = F.cross_entropy(logits, labels.index_select(0, output_nodes[self.target]))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += float(loss)
            steps += 1
        return {**_epoch_times(start, start_cpu), "loss": total / steps, "steps": steps}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Test accuracy of the target type with full neighbourhoods (the whole graph as every layer's graph)."""
        self.model.eval()
        inputs = self._inputs({t: torch.arange(self.graph.num_nodes(t)) for t in self.graph.ntypes})
        logits = self.model([self.graph] * len(self.model.convs), inputs)[self.target]
        labels = self.nodes[self.target]["y"]
        return {"test_acc": float((logits[self.test_ids].argmax(1) == labels[self.test_ids]).float().mean())}


def serve_dgl_hetero(spec: dict[str, Any]) -> None:
    peer = DGLHeteroPeer(spec)
    serve({"dgl": peer.dgl.__version__, "torch": torch.__version__, "threads": torch.get_num_threads()}, {"train": peer.train, "evaluate": peer.evaluate})


def serve_dgl_link(spec: dict[str, Any]) -> None:
    peer = DGLLinkPeer(spec)
    serve({"dgl": peer.dgl.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(), "exclude": spec["exclude"]}, {"reset": peer.reset, "train": peer.train, "scores": peer.scores})


def serve_dgl_minibatch(spec: dict[str, Any]) -> None:
    peer = DGLMiniBatchPeer(spec)
    handlers = {"sample": peer.sample, "gather": peer.gather, "reset": peer.reset, "train": peer.train, "evaluate": peer.evaluate}
    serve({"dgl": peer.dgl.__version__, "torch": torch.__version__, "threads": torch.get_num_threads()}, handlers)


KINDS = {"fullgraph": serve_fullgraph, "dgl_minibatch": serve_dgl_minibatch, "dgl_link": serve_dgl_link, "dgl_hetero": serve_dgl_hetero}


def main(argv: list[str]) -> int:
    """``peers.py KIND SPEC_JSON``; the spec's ``threads`` (if set) fixes torch's threads."""
    if len(argv) != 2 or argv[0] not in KINDS:
        print(f"usage: peers.py {{{','.join(KINDS)}}} SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(argv[1])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    KINDS[argv[0]](spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
