"""HeteroGraph: typed nodes and typed relations, each relation a CSR over incoming edges, validated once.

Node types carry their own node data (features of their own width, or none; labels and splits on the target
type); an edge type ``(src_type, relation, dst_type)`` is a :class:`~gnndist.block.Block` whose destinations
are the ``dst_type`` nodes and whose sources are the ``src_type`` nodes. :meth:`HeteroGraph.to_homogeneous`
numbers every node globally (types one after another) so that every partitioner runs on it unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.graph import MASK_FIELDS, NODE_FIELDS, ArrayStream, Graph, GraphInfo, _as_index, csr_from_edges, fingerprint_fields

EdgeType = tuple[str, str, str]
REVERSE_PREFIX = "rev_"


def edge_type_name(edge_type: EdgeType) -> str:
    """``('author', 'writes', 'paper')`` -> ``"author__writes__paper"`` (module and file keys)."""
    return "__".join(edge_type)


def _check_type_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name or "__" in name:
        raise ValueError(f"Expected a {kind} name that is a non-empty string without '__' (got {name!r})")


@dataclass(frozen=True)
class HeteroSchema:
    """What a model needs to know of a heterogeneous graph: types, widths, sizes, the target.

    Attributes:
        num_features: per node type its feature width (0: featureless, the model embeds its node ids).
        num_nodes: per node type its node count (the size of a featureless type's embedding table).
        edge_types: the relations, in the graph's order.
        target: the node type a node task trains and evaluates on.
    """

    num_features: dict[str, int]
    num_nodes: dict[str, int]
    edge_types: tuple[EdgeType, ...]
    target: str

    @property
    def node_types(self) -> tuple[str, ...]:
        return tuple(self.num_features)


@dataclass(eq=False)
class HeteroBlock:
    """One layer's typed structure: per relation a Block, and how many rows of each node type are destinations.

    For the whole graph every node is a destination; a later distributed trainer gives a part's owned rows
    here and appends halo rows to each type's input, relation by relation, without the model knowing.

    Attributes:
        blocks: per edge type, destinations (``dst_type`` rows) pulling from sources (``src_type`` rows).
        num_dst: per node type, the rows a layer outputs (the first rows of that type's input).
        halo: a part's block only: per node type, where each of its rows after the first ``num_dst`` (its halo
            rows) sits in the part's halo exchange order (see :meth:`keep_halo`).
    """

    blocks: dict[EdgeType, Block]
    num_dst: dict[str, int]
    halo: dict[str, Tensor] | None = None

    def to(self, device: torch.device | str) -> "HeteroBlock":
        halo = {t: rows.to(device) for t, rows in self.halo.items()} if self.halo is not None else None
        return HeteroBlock({edge_type: block.to(device) for edge_type, block in self.blocks.items()}, dict(self.num_dst), halo)

    def keep_halo(self, keep: Tensor) -> "HeteroBlock":
        """Every relation without the edges from the halo rows where ``keep`` (``[num_halo]``, in the part's
        exchange order) is False, as :meth:`Block.keep_halo` for a homogeneous part (boundary sampling)."""
        if self.halo is None:
            raise ValueError("keep_halo needs a part's HeteroBlock (HeteroPart.block()): this one has no halo rows")
        blocks = {}
        for edge_type, block in self.blocks.items():
            halo = self.halo[edge_type[0]]
            owned = torch.ones(block.num_src - halo.numel(), dtype=torch.bool, device=keep.device)
            blocks[edge_type] = block.keep_sources(torch.cat([owned, keep[halo]]))
        return HeteroBlock(blocks, dict(self.num_dst), self.halo)


@dataclass(eq=False)
class HomogeneousView:
    """A heterogeneous graph as one graph: node ``v`` of type ``t`` is global node ``offsets[t] + v``.

    Attributes:
        graph: the plain Graph (edges of every relation; the target type's labels and splits, other nodes
            unlabeled and in no split; features when every type has features of one width).
        node_type: ``[N]`` index into ``node_types`` of every global node.
        edge_type: ``[E]`` index into ``edge_types`` of every edge, in the graph's CSR order.
        node_types, edge_types: the names the indices refer to.
        offsets: per node type its first global id.
    """

    graph: Graph
    node_type: Tensor
    edge_type: Tensor
    node_types: list[str]
    edge_types: list[EdgeType]
    offsets: dict[str, int]

    def relation_edges(self, edge_type: EdgeType) -> Tensor:
        """``[2, E_r]`` (src, dst) of one relation in its types' own ids: the inverse of the view, per relation."""
        index = self.edge_types.index(edge_type)
        edges = self.graph.edge_index()[:, self.edge_type == index]
        src_type, _, dst_type = edge_type
        return torch.stack([edges[0] - self.offsets[src_type], edges[1] - self.offsets[dst_type]])

    def schema(self) -> dict[str, Any]:
        """What the type indices of the view mean, as JSON (``SCHEMA_KEYS``): ``node_types``, ``edge_types`` as
        ``[src, relation, dst]``, ``offsets``; recorded by typed partition directories and chunked folders."""
        return {"node_types": list(self.node_types), "edge_types": [list(edge_type) for edge_type in self.edge_types], "offsets": dict(self.offsets)}


SCHEMA_KEYS = ("node_types", "edge_types", "offsets")


@dataclass(eq=False)
class HeteroGraph:
    """A heterogeneous graph: node data per node type, a CSR over incoming edges per edge type.

    Build it with :meth:`from_edge_index`, :meth:`from_pyg` or :meth:`from_dgl`; the constructor validates
    everything and raises ``ValueError``/``TypeError`` naming the node type or the relation.

    Attributes:
        nodes: per node type its node data as an edge-less :class:`~gnndist.graph.Graph` (``x`` of the type's
            own width or None, ``y``, masks, ``num_classes``), validated by ``Graph`` like any node data.
        edges: per edge type ``(src_type, relation, dst_type)`` a Block: ``indptr`` over the ``dst_type``
            nodes, ``indices`` = ``src_type`` ids, ``num_src`` = the ``src_type`` count.
        target: the node type a node task trains on (it must have labels); None: the one labeled type, if
            exactly one type has labels.
    """

    nodes: dict[str, Graph]
    edges: dict[EdgeType, Block]
    target: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Checks types, relations, id ranges, node data and the target; errors name the type or relation."""
        if not self.nodes:
            raise ValueError("A heterogeneous graph needs at least one node type")
        for node_type, data in self.nodes.items():
            _check_type_name("node type", node_type)
            if not isinstance(data, Graph):
                raise TypeError(f"Node type {node_type!r}: expected its node data as a gnndist Graph (got {type(data).__name__})")
            if data.num_edges:
                raise ValueError(f"Node type {node_type!r}: node data must hold no edges (got {data.num_edges}); edges belong to edge types")
        for edge_type, block in self.edges.items():
            self._check_relation(edge_type, block)
        labeled = [node_type for node_type, data in self.nodes.items() if data.y is not None]
        if self.target is None:
            self.target = labeled[0] if len(labeled) == 1 else None
        elif self.target not in self.nodes:
            raise ValueError(f"target={self.target!r} is not a node type; node types: {', '.join(self.nodes)}")
        elif self.nodes[self.target].y is None:
            raise ValueError(f"target={self.target!r}: the target node type has no labels 'y'" + (f" (labeled types: {', '.join(labeled)})" if labeled else ""))

    def _check_relation(self, edge_type: Any, block: Block) -> None:
        if not (isinstance(edge_type, tuple) and len(edge_type) == 3):
            raise ValueError(f"Expected an edge type (src_type, relation, dst_type) (got {edge_type!r})")
        src_type, relation, dst_type = edge_type
        _check_type_name("relation", relation)
        for role, node_type in (("source", src_type), ("destination", dst_type)):
            if node_type not in self.nodes:
                raise ValueError(f"Edge type {edge_type}: unknown {role} node type {node_type!r}; node types: {', '.join(self.nodes)}")
        num_src, num_dst = self.nodes[src_type].num_nodes, self.nodes[dst_type].num_nodes
        block.indptr, block.indices = _as_index(f"{edge_type} indptr", block.indptr), _as_index(f"{edge_type} indices", block.indices)
        if block.indptr.shape != (num_dst + 1,) or int(block.indptr[0]) != 0 or int(block.indptr[-1]) != block.indices.numel() or bool((block.indptr.diff() < 0).any()):
            raise ValueError(f"Edge type {edge_type}: 'indptr' must be non-decreasing offsets of shape [{num_dst + 1}] ({dst_type!r} nodes + 1) from 0 to num_edges={block.indices.numel()}")
        if block.num_src != num_src:
            raise ValueError(f"Edge type {edge_type}: num_src={block.num_src} but source type {src_type!r} has {num_src} nodes")
        if block.indices.numel() and (int(block.indices.min()) < 0 or int(block.indices.max()) >= num_src):
            bad = int(block.indices.min()) if int(block.indices.min()) < 0 else int(block.indices.max())
            raise ValueError(f"Edge type {edge_type}: source id {bad} out of range for node type {src_type!r} ([0, {num_src - 1}])")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edge_index(
        cls,
        num_nodes: dict[str, int],
        edge_index: dict[EdgeType, Any],
        *,
        x: dict[str, Any] | None = None,
        y: dict[str, Any] | None = None,
        train_mask: dict[str, Any] | None = None,
        val_mask: dict[str, Any] | None = None,
        test_mask: dict[str, Any] | None = None,
        num_classes: dict[str, int] | None = None,
        target: str | None = None,
        add_reverse: bool = False,
    ) -> "HeteroGraph":
        """Builds a graph from per-type node counts and per-relation ``[2, E]`` (src, dst) edge lists.

        Node data are dicts by node type (types may be missing: no features, no labels). With
        ``add_reverse``, every relation ``(s, r, d)`` also gets ``(d, rev_r, s)`` (message passing in both
        directions, e.g. papers to their authors).
        """
        given = {"x": x or {}, "y": y or {}, "train_mask": train_mask or {}, "val_mask": val_mask or {}, "test_mask": test_mask or {}}
        for name, values in {**given, "num_classes": num_classes or {}}.items():
            unknown = sorted(set(values) - set(num_nodes))
            if unknown:
                raise ValueError(f"'{name}' names unknown node type(s) {unknown}; node types: {', '.join(num_nodes)}")
        nodes = {}
        for node_type, count in num_nodes.items():
            _check_type_name("node type", node_type)
            data = {name: values[node_type] for name, values in given.items() if values.get(node_type) is not None}
            if "y" not in data and any(name in data for name in MASK_FIELDS):
                raise ValueError(f"Node type {node_type!r} has split masks ({', '.join(name for name in MASK_FIELDS if name in data)}) but no labels 'y'")
            try:
                if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                    raise ValueError(f"expected num_nodes >= 1 (got {count!r})")
                nodes[node_type] = Graph(torch.zeros(count + 1, dtype=torch.long), torch.zeros(0, dtype=torch.long), num_classes=(num_classes or {}).get(node_type), **data)
            except (ValueError, TypeError) as error:
                raise type(error)(f"Node type {node_type!r}: {error}") from error
        edge_index = dict(edge_index)
        if add_reverse:
            for (src_type, relation, dst_type), edges in list(edge_index.items()):
                reverse = (dst_type, REVERSE_PREFIX + relation, src_type)
                if reverse in edge_index:
                    raise ValueError(f"add_reverse: edge type {reverse} already exists")
                edge_index[reverse] = _as_index(f"{(src_type, relation, dst_type)} edge_index", edges).flip(0)
        edges = {}
        for edge_type, value in edge_index.items():
            edges[edge_type] = _relation_block(edge_type, value, nodes)
        return cls(nodes, edges, target)

    @classmethod
    def from_pyg(cls, data: Any, *, target: str | None = None, add_reverse: bool = False) -> "HeteroGraph":
        """Builds a graph from a PyG ``HeteroData`` (per node type ``num_nodes``, ``x``, ``y``, masks; per edge type ``edge_index``)."""
        node_types, edge_types = data.metadata()
        fields_of = {name: {t: data[t][name] for t in node_types if name in data[t]} for name in NODE_FIELDS}
        num_classes = {t: int(data[t].num_classes) for t in node_types if "num_classes" in data[t]}
        return cls.from_edge_index(
            {t: int(data[t].num_nodes) for t in node_types},
            {tuple(edge_type): data[edge_type].edge_index for edge_type in edge_types},
            num_classes=num_classes,
            target=target,
            add_reverse=add_reverse,
            **fields_of,
        )

    @classmethod
    def from_dgl(cls, graph: Any, *, target: str | None = None, add_reverse: bool = False) -> "HeteroGraph":
        """Builds a graph from a ``dgl.heterograph`` (ndata ``feat``/``label``/masks per node type)."""
        aliases = {"x": ("feat", "x"), "y": ("label", "y"), "train_mask": ("train_mask",), "val_mask": ("val_mask",), "test_mask": ("test_mask",)}
        node_data: dict[str, dict[str, Tensor]] = {name: {} for name in aliases}
        for node_type in graph.ntypes:
            data = graph.nodes[node_type].data
            for name, keys in aliases.items():
                found = next((data[key] for key in keys if key in data), None)
                if found is not None:
                    node_data[name][node_type] = found
        edges = {tuple(edge_type): torch.stack(graph.edges(etype=edge_type)).long() for edge_type in graph.canonical_etypes}
        return cls.from_edge_index({t: graph.num_nodes(t) for t in graph.ntypes}, edges, target=target, add_reverse=add_reverse, **node_data)

    # ------------------------------------------------------------------ views and conversions
    @property
    def node_types(self) -> list[str]:
        return list(self.nodes)

    @property
    def edge_types(self) -> list[EdgeType]:
        return list(self.edges)

    @property
    def num_nodes(self) -> int:
        return sum(data.num_nodes for data in self.nodes.values())

    @property
    def num_edges(self) -> int:
        return sum(block.num_edges for block in self.edges.values())

    def edge_index(self, edge_type: EdgeType) -> Tensor:
        """``[2, E_r]`` (src, dst) of one relation, in CSR order."""
        return self.edges[edge_type].edge_index()

    def schema(self) -> HeteroSchema:
        """Types, widths and sizes for building a model; needs a target type."""
        if self.target is None:
            raise ValueError(f"The graph has no target node type (labeled types: {', '.join(t for t, d in self.nodes.items() if d.y is not None) or 'none'}); give target=")
        return HeteroSchema({t: d.num_features for t, d in self.nodes.items()}, {t: d.num_nodes for t, d in self.nodes.items()}, tuple(self.edges), self.target)

    def inputs(self) -> dict[str, Tensor]:
        """A model's input per node type: its features, or its node ids ``[n]`` when featureless (embedded by the model)."""
        return {t: d.x if d.x is not None else torch.arange(d.num_nodes) for t, d in self.nodes.items()}

    def block(self) -> HeteroBlock:
        """The whole graph as one layer's structure (every node a destination)."""
        return HeteroBlock(dict(self.edges), {t: d.num_nodes for t, d in self.nodes.items()})

    def info(self) -> GraphInfo:
        """Sizes (over all types), the target type's widths and label kind, and the fingerprint."""
        target = self.nodes[self.target] if self.target is not None else None
        return GraphInfo(
            self.num_nodes,
            self.num_edges,
            target.num_features if target is not None else 0,
            target.num_classes if target is not None else 0,
            self.fingerprint(),
            target is not None,
            target is not None and target.y.is_floating_point(),
        )

    def fingerprint(self) -> str:
        """A sha256 over every type's node data, every relation's structure and the target (like :meth:`Graph.fingerprint`)."""
        values: dict[str, Any] = {f"node:{t}": _text(d.fingerprint()) for t, d in self.nodes.items()}
        for edge_type, block in self.edges.items():
            for name in ("indptr", "indices"):
                array = getattr(block, name).contiguous().numpy()
                values[f"edge:{edge_type_name(edge_type)}:{name}"] = ArrayStream(array.dtype, array.shape, (array,))
        values["target"] = _text(str(self.target))
        return fingerprint_fields(values)

    def to_pyg(self) -> Any:
        """A PyG ``HeteroData`` with the same node data (and ``num_classes`` of labeled types) and edges (CSR order)."""
        from torch_geometric.data import HeteroData

        data = HeteroData()
        for node_type, nodes in self.nodes.items():
            data[node_type].num_nodes = nodes.num_nodes
            for name, value in nodes.node_data().items():
                data[node_type][name] = value
            if nodes.y is not None:
                data[node_type].num_classes = nodes.num_classes
        for edge_type in self.edges:
            data[edge_type].edge_index = self.edge_index(edge_type)
        return data

    def to_dgl(self) -> Any:
        """A ``dgl.heterograph`` with ndata ``feat``, ``label`` and masks per node type (DGL is imported here only)."""
        import dgl

        graph = dgl.heterograph({edge_type: tuple(self.edge_index(edge_type)) for edge_type in self.edges}, num_nodes_dict={t: d.num_nodes for t, d in self.nodes.items()})
        names = {"x": "feat", "y": "label"}
        for node_type, nodes in self.nodes.items():
            for name, value in nodes.node_data().items():
                graph.nodes[node_type].data[names.get(name, name)] = value
        return graph

    def to_homogeneous(self) -> HomogeneousView:
        """Every node numbered globally, types one after another in :attr:`node_types` order (see :class:`HomogeneousView`)."""
        offsets, start = {}, 0
        for node_type, nodes in self.nodes.items():
            offsets[node_type], start = start, start + nodes.num_nodes
        node_types, edge_types = self.node_types, self.edge_types
        node_type = torch.cat([torch.full((d.num_nodes,), i, dtype=torch.long) for i, d in enumerate(self.nodes.values())])
        src, dst, kind = [], [], []
        for index, (edge_type, block) in enumerate(self.edges.items()):
            src.append(block.indices + offsets[edge_type[0]])
            dst.append(block.dst() + offsets[edge_type[2]])
            kind.append(torch.full((block.num_edges,), index, dtype=torch.long))
        src_all, dst_all, kind_all = (torch.cat(t) if t else torch.zeros(0, dtype=torch.long) for t in (src, dst, kind))
        order = torch.argsort(dst_all * start + src_all, stable=True)  # the CSR order Graph.from_edge_index gives
        graph = Graph.from_edge_index(torch.stack([src_all, dst_all]), start, **self._homogeneous_node_data(offsets, start))
        return HomogeneousView(graph, node_type, kind_all[order], node_types, edge_types, offsets)

    def padded_features(self) -> Tensor:
        """``[num_nodes, W]`` every node's features in the view's order, zero-padded to the widest type ``W``
        (featureless types' rows all zeros): one table a homogeneous feature store or chunked folder holds."""
        width = max(max(nodes.num_features for nodes in self.nodes.values()), 1)
        dtype = next((nodes.x.dtype for nodes in self.nodes.values() if nodes.x is not None), torch.float32)
        x = torch.zeros(self.num_nodes, width, dtype=dtype)
        start = 0
        for nodes in self.nodes.values():
            if nodes.x is not None:
                x[start : start + nodes.num_nodes, : nodes.num_features] = nodes.x
            start += nodes.num_nodes
        return x

    def _homogeneous_node_data(self, offsets: dict[str, int], num_nodes: int) -> dict[str, Any]:
        """The target's labels and splits at its global ids, and features when every type has one width."""
        data: dict[str, Any] = {}
        widths = {d.num_features for d in self.nodes.values()}
        if len(widths) == 1 and 0 not in widths:
            data["x"] = torch.cat([d.x for d in self.nodes.values()])
        if self.target is not None:
            target, rows = self.nodes[self.target], slice(offsets[self.target], offsets[self.target] + self.nodes[self.target].num_nodes)
            y = torch.full((num_nodes, *target.y.shape[1:]), -1 if not target.y.is_floating_point() else 0, dtype=target.y.dtype)
            y[rows] = target.y
            data["y"] = y
            for name in MASK_FIELDS:
                mask = getattr(target, name)
                if mask is not None:
                    data[name] = torch.zeros(num_nodes, dtype=torch.bool)
                    data[name][rows] = mask
        return data

    def __repr__(self) -> str:
        nodes = ", ".join(f"{t}={d.num_nodes}" + (f" x{d.num_features}" if d.x is not None else "") for t, d in self.nodes.items())
        edges = ", ".join(f"{edge_type_name(e)}={b.num_edges}" for e, b in self.edges.items())
        return f"HeteroGraph(nodes: {nodes}; edges: {edges}; target={self.target!r})"


def _text(text: str) -> ArrayStream:
    """A string as an array stream (hashed by :func:`~gnndist.graph.fingerprint_fields`)."""
    array = np.frombuffer(text.encode(), dtype=np.uint8)
    return ArrayStream(array.dtype, array.shape, (array,))


def _relation_block(edge_type: Any, value: Any, nodes: dict[str, Graph]) -> Block:
    """One relation's ``[2, E]`` (src, dst) list as a Block, ids checked against their types' counts."""
    if not (isinstance(edge_type, tuple) and len(edge_type) == 3):
        raise ValueError(f"Expected an edge type (src_type, relation, dst_type) (got {edge_type!r})")
    src_type, _, dst_type = edge_type
    for role, node_type in (("source", src_type), ("destination", dst_type)):
        if node_type not in nodes:
            raise ValueError(f"Edge type {edge_type}: unknown {role} node type {node_type!r}; node types: {', '.join(nodes)}")
    edges = _as_index(f"{edge_type} edge_index", value)
    if edges.dim() != 2 or edges.size(0) != 2:
        raise ValueError(f"Edge type {edge_type}: expected edge_index of shape [2, num_edges] (got {tuple(edges.shape)})")
    num_src, num_dst = nodes[src_type].num_nodes, nodes[dst_type].num_nodes
    for row, node_type, count in ((0, src_type, num_src), (1, dst_type, num_dst)):
        ids = edges[row]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= count):
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise ValueError(f"Edge type {edge_type}: {'source' if row == 0 else 'destination'} id {bad} out of range for node type {node_type!r} ([0, {count - 1}])")
    indptr, indices, _ = csr_from_edges(edges[0], edges[1], num_dst, num_src=num_src)
    return Block(indptr, indices, num_src)


__all__ = ["EdgeType", "HeteroBlock", "HeteroGraph", "HeteroSchema", "HomogeneousView", "edge_type_name"]
