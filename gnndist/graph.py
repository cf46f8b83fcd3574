"""Graph: CSR over incoming edges plus node data, validated once at construction."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor

from gnndist.block import csr_indptr

NODE_FIELDS = ("x", "y", "train_mask", "val_mask", "test_mask")
MASK_FIELDS = ("train_mask", "val_mask", "test_mask")


def _as_index(name: str, value: Any) -> Tensor:
    """Converts ``value`` to an int64 tensor, refusing floats and bools (ids must be integers)."""
    tensor = torch.as_tensor(value)
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise TypeError(f"Expected integer node ids in '{name}' (got dtype {tensor.dtype})")
    return tensor.to(torch.long)


def csr_order(dst: Tensor, src: Tensor, num_src: int) -> Tensor:
    """The order of edges in CSR over incoming edges: by destination, then source, ties in edge order.

    One stable argsort of the key ``dst * num_src + src``: on 10M edges torch's takes 0.5 s where
    ``np.lexsort((src, dst))`` took 3.7 s (the order is the same).
    """
    return torch.argsort(dst.long() * num_src + src.long(), stable=True) if src.numel() else torch.zeros(0, dtype=torch.long)


def csr_from_edges(src: Tensor, dst: Tensor, num_nodes: int, edge_weight: Tensor | None = None, num_src: int | None = None):
    """Sorts edges by destination (stable, then by source) into CSR over incoming edges.

    ``num_nodes`` counts the destinations; ``num_src`` the sources when they are other nodes (a bipartite
    relation of a :class:`~gnndist.hetero.HeteroGraph`; default ``num_nodes``).

    Returns:
        ``(indptr [N+1], indices [E] = sources, edge_weight [E] or None)``.
    """
    order = csr_order(dst, src, num_nodes if num_src is None else num_src)
    indices = src[order]
    return csr_indptr(dst, num_nodes), indices, (edge_weight[order] if edge_weight is not None else None)


@dataclass(frozen=True)
class ArrayStream:
    """An array given as consecutive pieces (row blocks), so it can be hashed without holding it whole.

    Attributes:
        dtype, shape: of the whole array.
        pieces: C-contiguous numpy arrays whose bytes, concatenated, are the whole array's.
    """

    dtype: np.dtype
    shape: tuple[int, ...]
    pieces: Iterable[np.ndarray]


def fingerprint_fields(values: dict[str, int | ArrayStream | None]) -> str:
    """The graph fingerprint of field values given in :class:`Graph` field order (see :meth:`Graph.fingerprint`).

    One definition for an in-memory graph and for one streamed from chunks (``gnndist.data.chunked``):
    per field its name, then an int as text, or an array's ``(dtype, shape)`` and bytes; None adds nothing.
    """
    digest = hashlib.sha256()
    for name, value in values.items():
        digest.update(name.encode())
        if isinstance(value, int):
            digest.update(str(value).encode())
        elif value is not None:
            digest.update(str((np.dtype(value.dtype), tuple(value.shape))).encode())
            for piece in value.pieces:
                digest.update(np.ascontiguousarray(piece).data)
    return digest.hexdigest()[:16]



@dataclass(frozen=True)
class GraphInfo:
    """What a driver needs to know of a graph without holding it: sizes, widths, label kind, fingerprint.

    A loaded :class:`Graph` gives it with :meth:`Graph.info`; a chunked folder gives it from its ``meta.json``
    (:meth:`gnndist.data.chunked.ChunkedGraph.info`), so a job on a chunked graph never loads the graph.

    Attributes:
        num_nodes, num_edges: sizes.
        num_features: input width (0 without features).
        num_classes: output width for node classification (0 without labels).
        fingerprint: :meth:`Graph.fingerprint` of the graph.
        has_labels: the graph has node labels ``y``.
        multilabel: the labels are multi-hot rows (float ``y``).
    """

    num_nodes: int
    num_edges: int
    num_features: int
    num_classes: int
    fingerprint: str
    has_labels: bool
    multilabel: bool


@dataclass(frozen=True)
class DegreeStats:
    """The in-degree statistics ``aggregation=auto`` judges a graph by (beside its sizes), so a driver can choose
    a backend for a graph it never loads: recorded once in a chunked folder's ``meta.json``.

    Attributes:
        max_in_degree: largest in-degree (0 without nodes).
        degree_cv: standard deviation / mean of the in-degree (0 when the mean is 0).
    """

    max_in_degree: int
    degree_cv: float

    @classmethod
    def of(cls, in_degree: Tensor) -> "DegreeStats":
        """The statistics of ``[num_nodes]`` in-degrees (any integer dtype)."""
        degree = in_degree.to(torch.float64)
        mean = degree.mean().item() if degree.numel() else 0.0
        cv = degree.std(unbiased=False).item() / mean if mean > 0 else 0.0
        return cls(int(degree.max().item()) if degree.numel() else 0, cv)


@dataclass(eq=False)
class Graph:
    """A directed graph stored as CSR over incoming edges (row = destination), so aggregation pulls.

    Build it with :meth:`from_edge_index`, :meth:`from_pyg`, :meth:`from_scipy` or :meth:`from_dgl`;
    the constructor validates everything and raises ``ValueError``/``TypeError`` naming the field.

    Attributes:
        indptr: ``[num_nodes + 1]`` int64 offsets; in-edges of node ``v`` are ``indptr[v]:indptr[v+1]``.
        indices: ``[num_edges]`` int64 source node of each in-edge.
        x: ``[num_nodes, F]`` float node features, or None.
        y: ``[num_nodes]`` int64 labels (or ``[num_nodes, C]`` multi-label), or None.
        train_mask, val_mask, test_mask: ``[num_nodes]`` bool splits, disjoint, or None.
        edge_weight: ``[num_edges]`` float weight of each in-edge (CSR order), or None.
        num_classes: classes of ``y``; given, or inferred as the largest label + 1 (0 without labels).
            Labels of nodes in a split lie in ``[0, num_classes)``; nodes outside every split may be
            unlabeled (-1).
    """

    indptr: Tensor
    indices: Tensor
    x: Tensor | None = None
    y: Tensor | None = None
    train_mask: Tensor | None = None
    val_mask: Tensor | None = None
    test_mask: Tensor | None = None
    edge_weight: Tensor | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        self.indptr = _as_index("indptr", self.indptr)
        self.indices = _as_index("indices", self.indices)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Checks shapes, ranges, dtypes and splits; raises with the offending field and value."""
        if self.indptr.dim() != 1 or self.indptr.numel() < 2:
            raise ValueError(f"Expected 'indptr' of shape [num_nodes + 1] with num_nodes >= 1 (got shape {tuple(self.indptr.shape)}): empty graph")
        if self.indices.dim() != 1:
            raise ValueError(f"Expected 'indices' of shape [num_edges] (got {tuple(self.indices.shape)})")
        n = self.num_nodes
        if self.indptr[0] != 0 or self.indptr[-1] != self.indices.numel():
            raise ValueError(f"'indptr' must start at 0 and end at num_edges={self.indices.numel()} (got {int(self.indptr[0])}..{int(self.indptr[-1])})")
        if self.indptr.numel() > 1 and bool((self.indptr[1:] < self.indptr[:-1]).any()):
            raise ValueError("'indptr' must be non-decreasing")
        if self.indices.numel():
            lo, hi = int(self.indices.min()), int(self.indices.max())
            if lo < 0 or hi >= n:
                raise ValueError(f"Edge source ids must be in [0, {n - 1}] (got {lo if lo < 0 else hi})")
        if self.x is not None:
            self.x = torch.as_tensor(self.x)
            if not self.x.is_floating_point():
                self.x = self.x.float()
            if self.x.dim() != 2 or self.x.size(0) != n:
                raise ValueError(f"Expected 'x' of shape [{n}, F] (got {tuple(self.x.shape)})")
            if not bool(torch.isfinite(self.x).all()):
                bad = int((~torch.isfinite(self.x)).any(dim=1).nonzero()[0])
                raise ValueError(f"'x' has NaN or inf values (first at node {bad})")
        for name in MASK_FIELDS:
            mask = getattr(self, name)
            if mask is None:
                continue
            mask = torch.as_tensor(mask)
            if mask.dtype != torch.bool:
                raise TypeError(f"Expected '{name}' to be a bool tensor (got dtype {mask.dtype})")
            if mask.shape != (n,):
                raise ValueError(f"Expected '{name}' of shape [{n}] (got {tuple(mask.shape)})")
            setattr(self, name, mask)
        masks = [(name, getattr(self, name)) for name in MASK_FIELDS if getattr(self, name) is not None]
        for i, (name_a, a) in enumerate(masks):
            for name_b, b in masks[i + 1:]:
                both = a & b
                if bool(both.any()):
                    raise ValueError(f"Splits '{name_a}' and '{name_b}' overlap on {int(both.sum())} nodes (first: {int(both.nonzero()[0])})")
        if self.edge_weight is not None:
            self.edge_weight = torch.as_tensor(self.edge_weight, dtype=torch.float32)
            if self.edge_weight.shape != self.indices.shape:
                raise ValueError(f"Expected 'edge_weight' of shape [{self.num_edges}] (got {tuple(self.edge_weight.shape)})")
        self._validate_labels(masks)

    def _validate_labels(self, masks: list[tuple[str, Tensor]]) -> None:
        """Normalizes ``y`` and checks it against ``num_classes`` and the splits.

        Single-label ``y`` becomes int64 ``[N]`` (float labels must be whole numbers; NaN means
        unlabeled, -1); multi-label ``y`` is float ``[N, C]`` with values in [0, 1] for nodes in a split.
        Errors name the node, its value and its split.
        """
        n, given = self.num_nodes, self.num_classes
        if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < 1):
            raise ValueError(f"Expected 'num_classes' to be an integer >= 1 (got {given!r})")
        if self.y is None:
            if given is not None:
                raise ValueError(f"'num_classes'={given} was given but the graph has no labels 'y'")
            self.num_classes = 0
            return
        y = torch.as_tensor(self.y)
        if y.dim() == 0 or y.size(0) != n:
            raise ValueError(f"Expected 'y' with {n} rows, one per node (got {tuple(y.shape)})")
        if y.dtype == torch.bool or y.is_complex() or y.dim() > 2:
            raise TypeError(f"Expected 'y' to be integer labels [{n}] or float multi-labels [{n}, C] (got dtype {y.dtype}, shape {tuple(y.shape)})")
        if y.dim() == 2 and y.size(1) == 1 and not y.is_floating_point():
            y = y.view(-1)
        in_split = torch.zeros(n, dtype=torch.bool)
        for _, mask in masks:
            in_split |= mask
        if not masks:
            in_split = None  # no splits: every node may be labeled or not

        def split_of(node: int) -> str:
            names = [name for name, mask in masks if bool(mask[node])]
            return f"in '{names[0]}'" if names else "outside every split"

        if y.dim() == 2:
            self.y = y.float()
            if given is not None and given != y.size(1):
                raise ValueError(f"'num_classes'={given} does not match the {y.size(1)} columns of multi-label 'y'")
            labeled = self.y if in_split is None else self.y[in_split]
            bad = ~((labeled >= 0) & (labeled <= 1)).all(dim=1)  # also catches NaN
            if bool(bad.any()):
                node = int((torch.arange(n) if in_split is None else in_split.nonzero().flatten())[bad.nonzero()[0]])
                raise ValueError(f"Multi-label 'y' of node {node} ({split_of(node)}) has values outside [0, 1]: {self.y[node].tolist()[:8]}")
            self.num_classes = y.size(1)
            return
        if y.is_floating_point():
            whole = torch.isnan(y) | (y == torch.round(y))
            if not bool(whole.all()):
                node = int((~whole).nonzero()[0])
                raise ValueError(f"Label 'y' of node {node} ({split_of(node)}) is {float(y[node])}: labels must be whole class numbers (float [N, C] for multi-label)")
            y = torch.nan_to_num(y, nan=-1.0)
        self.y = y = y.long()
        low = -1 if in_split is None else torch.where(in_split, 0, -1)
        below = y < low
        if bool(below.any()):
            node = int(below.nonzero()[0])
            allowed = "[0, num_classes)" if in_split is not None and bool(in_split[node]) else "[0, num_classes) or -1 (unlabeled)"
            raise ValueError(f"Label 'y' of node {node} ({split_of(node)}) is {int(y[node])}; expected {allowed}")
        top = int(y.max())
        if given is not None:
            if top >= given:
                node = int((y >= given).nonzero()[0])
                raise ValueError(f"Label 'y' of node {node} ({split_of(node)}) is {int(y[node])}; expected [0, {given}) (num_classes={given})")
            self.num_classes = given
            return
        present = torch.bincount(y[y >= 0], minlength=top + 1) > 0 if top >= 0 else torch.zeros(0, dtype=torch.bool)
        if not bool(present.all()):
            missing = (~present).nonzero().flatten()
            node = int((y == top).nonzero()[0])
            raise ValueError(
                f"Labels skip {missing.numel()} of {top + 1} classes (first missing: {int(missing[0])}); the largest label, {top} at node {node} ({split_of(node)}), "
                f"would make a {top + 1}-way output: labels must be 0..C-1 with every class present, or give num_classes"
            )
        self.num_classes = top + 1

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edge_index(cls, edge_index: Any, num_nodes: int | None = None, *, edge_weight: Any = None, num_classes: int | None = None, **node_data: Any) -> "Graph":
        """Builds a graph from a ``[2, E]`` (src, dst) edge list; ``node_data`` are ``x``, ``y`` and masks."""
        edge_index = _as_index("edge_index", edge_index)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"Expected 'edge_index' of shape [2, num_edges] (got {tuple(edge_index.shape)})")
        if edge_index.numel() and int(edge_index.min()) < 0:
            raise ValueError(f"Node ids in 'edge_index' must be >= 0 (got {int(edge_index.min())})")
        if num_nodes is None:
            sizes = [torch.as_tensor(v).size(0) for k, v in node_data.items() if v is not None]
            num_nodes = sizes[0] if sizes else (int(edge_index.max()) + 1 if edge_index.numel() else 0)
        if num_nodes < 1:
            raise ValueError(f"A graph needs at least one node (got num_nodes={num_nodes}): empty graph")
        if edge_index.numel() and int(edge_index.max()) >= num_nodes:
            raise ValueError(f"Node ids in 'edge_index' must be < num_nodes={num_nodes} (got {int(edge_index.max())})")
        unknown = set(node_data) - set(NODE_FIELDS)
        if unknown:
            raise TypeError(f"Unknown node data {sorted(unknown)}; expected some of {list(NODE_FIELDS)}")
        weight = torch.as_tensor(edge_weight, dtype=torch.float32) if edge_weight is not None else None
        if weight is not None and weight.shape != (edge_index.size(1),):
            raise ValueError(f"Expected 'edge_weight' of shape [{edge_index.size(1)}] (got {tuple(weight.shape)})")
        indptr, indices, weight = csr_from_edges(edge_index[0], edge_index[1], num_nodes, weight)
        return cls(indptr, indices, edge_weight=weight, num_classes=num_classes, **node_data)

    @classmethod
    def from_pyg(cls, data: Any) -> "Graph":
        """Builds a graph from a PyG ``Data`` (``edge_index``, optional ``edge_weight``/``x``/``y``/masks)."""
        node_data = {k: getattr(data, k, None) for k in NODE_FIELDS}
        weight = getattr(data, "edge_weight", None)
        return cls.from_edge_index(data.edge_index, data.num_nodes, edge_weight=weight, **node_data)

    @classmethod
    def from_scipy(cls, matrix: Any, **node_data: Any) -> "Graph":
        """Builds a graph from a sparse adjacency where ``matrix[src, dst] != 0`` is the edge src -> dst."""
        coo = matrix.tocoo()
        if coo.shape[0] != coo.shape[1]:
            raise ValueError(f"Expected a square adjacency matrix (got shape {coo.shape})")
        edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        weight = torch.from_numpy(coo.data.astype(np.float32))
        has_weights = not bool((weight == 1).all())
        return cls.from_edge_index(edge_index, coo.shape[0], edge_weight=weight if has_weights else None, **node_data)

    @classmethod
    def from_dgl(cls, dgl_graph: Any) -> "Graph":
        """Builds a graph from a homogeneous ``DGLGraph`` (ndata ``feat``/``label``/masks, edata ``w``)."""
        src, dst = dgl_graph.edges()
        ndata = dgl_graph.ndata
        aliases = {"x": ("feat", "x"), "y": ("label", "y"), "train_mask": ("train_mask",), "val_mask": ("val_mask",), "test_mask": ("test_mask",)}
        node_data = {field: next((ndata[k] for k in keys if k in ndata), None) for field, keys in aliases.items()}
        weight = dgl_graph.edata.get("w", dgl_graph.edata.get("weight"))
        return cls.from_edge_index(torch.stack([src, dst]).long(), dgl_graph.num_nodes(), edge_weight=weight, **node_data)

    # ------------------------------------------------------------------ views and conversions
    @property
    def num_nodes(self) -> int:
        return self.indptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    @property
    def num_features(self) -> int:
        return 0 if self.x is None else self.x.size(1)

    def dst(self) -> Tensor:
        """``[E]`` destination of every edge, in CSR order."""
        return torch.repeat_interleave(torch.arange(self.num_nodes), self.in_degrees())

    def edge_index(self) -> Tensor:
        """``[2, E]`` (src, dst) in CSR order."""
        return torch.stack([self.indices, self.dst()])

    def in_degrees(self) -> Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def out_degrees(self) -> Tensor:
        return torch.bincount(self.indices, minlength=self.num_nodes)

    def node_data(self) -> dict[str, Tensor]:
        """The non-empty node fields by name."""
        return {k: getattr(self, k) for k in NODE_FIELDS if getattr(self, k) is not None}

    def to_pyg(self) -> Any:
        """A PyG ``Data`` with the same edges (CSR order) and node data."""
        from torch_geometric.data import Data

        data = Data(edge_index=self.edge_index(), num_nodes=self.num_nodes, **self.node_data())
        if self.edge_weight is not None:
            data.edge_weight = self.edge_weight
        return data

    def to_scipy(self) -> Any:
        """``scipy.sparse.csr_matrix`` with ``[src, dst]`` = edge weight (1 without weights)."""
        import scipy.sparse as sp

        weight = self.edge_weight if self.edge_weight is not None else torch.ones(self.num_edges)
        src, dst = self.edge_index().numpy()
        return sp.csr_matrix((weight.numpy(), (src, dst)), shape=(self.num_nodes, self.num_nodes))

    def to_undirected(self) -> "Graph":
        """Adds every reverse edge and drops duplicates (weights of duplicates: the first one kept)."""
        src, dst = self.indices, self.dst()
        both_src, both_dst = torch.cat([src, dst]), torch.cat([dst, src])
        key = both_dst * self.num_nodes + both_src
        weight = torch.cat([self.edge_weight, self.edge_weight]) if self.edge_weight is not None else None
        unique_key, inverse = torch.unique(key, return_inverse=True)
        first = torch.full((unique_key.numel(),), key.numel(), dtype=torch.long).scatter_reduce_(0, inverse, torch.arange(key.numel()), "amin")
        edge_index = torch.stack([both_src[first], both_dst[first]])
        return Graph.from_edge_index(edge_index, self.num_nodes, edge_weight=weight[first] if weight is not None else None, num_classes=self.num_classes or None, **self.node_data())

    def subgraph(self, nodes: Any) -> "Graph":
        """The node-induced subgraph on ``nodes`` (ids or a bool mask), renumbered in the given order."""
        nodes = torch.as_tensor(nodes)
        if nodes.dtype == torch.bool:
            if nodes.shape != (self.num_nodes,):
                raise ValueError(f"Expected a node mask of shape [{self.num_nodes}] (got {tuple(nodes.shape)})")
            nodes = nodes.nonzero().flatten()
        nodes = _as_index("nodes", nodes)
        if nodes.numel() == 0:
            raise ValueError("Cannot take the subgraph of zero nodes: empty graph")
        if int(nodes.min()) < 0 or int(nodes.max()) >= self.num_nodes:
            raise ValueError(f"Subgraph node ids must be in [0, {self.num_nodes - 1}] (got {int(nodes.min())}..{int(nodes.max())})")
        if torch.unique(nodes).numel() != nodes.numel():
            raise ValueError("Subgraph node ids must be unique")
        new_id = torch.full((self.num_nodes,), -1, dtype=torch.long)
        new_id[nodes] = torch.arange(nodes.numel())
        src, dst = new_id[self.indices], new_id[self.dst()]
        keep = (src >= 0) & (dst >= 0)
        weight = self.edge_weight[keep] if self.edge_weight is not None else None
        node_data = {k: v[nodes] for k, v in self.node_data().items()}
        return Graph.from_edge_index(torch.stack([src[keep], dst[keep]]), nodes.numel(), edge_weight=weight, num_classes=self.num_classes or None, **node_data)

    def info(self) -> GraphInfo:
        """Sizes, widths and fingerprint of this graph (the fingerprint hashes every tensor: computed once per call)."""
        return GraphInfo(self.num_nodes, self.num_edges, self.num_features, self.num_classes, self.fingerprint(), self.y is not None, self.y is not None and self.y.is_floating_point())

    def fingerprint(self) -> str:
        """A sha256 over structure, node data and ``num_classes``: the identity of a graph for partition directories and checkpoints."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Tensor):
                array = value.contiguous().numpy()
                value = ArrayStream(array.dtype, array.shape, (array,))
            values[field.name] = value
        return fingerprint_fields(values)

    def with_(self, **changes: Any) -> "Graph":
        """A copy with some fields replaced (validated again; new labels without ``num_classes`` infer it again)."""
        if ("y" in changes and "num_classes" not in changes) or self.y is None:
            changes.setdefault("num_classes", None)
        return replace(self, **changes)

    def __repr__(self) -> str:
        parts = [f"num_nodes={self.num_nodes}", f"num_edges={self.num_edges}"]
        if self.x is not None:
            parts.append(f"num_features={self.num_features}")
        if self.y is not None:
            parts.append(f"num_classes={self.num_classes}")
        for name in MASK_FIELDS:
            mask = getattr(self, name)
            if mask is not None:
                parts.append(f"{name.split('_')[0]}={int(mask.sum())}")
        return f"Graph({', '.join(parts)})"
