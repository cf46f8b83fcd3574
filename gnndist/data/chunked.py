"""The chunked graph format: a folder of ``.npy`` chunks that readers memory-map one at a time.

Layout::

    DIR/meta.json                 format marker, sizes, node-data dtypes, every chunk with its files' sha256, fingerprint,
                                  in-degree statistics (``degree_stats``: max, coefficient of variation)
    DIR/edges-00000/src.npy       int64 [n]   source of each edge of the chunk (n <= chunk_edges)
    DIR/edges-00000/dst.npy       int64 [n]   destination
    DIR/edges-00000/weight.npy    float32 [n] edge weight (only when the graph has weights)
    DIR/nodes-00000/x.npy         rows start..stop of each node field (x, y, train_mask, val_mask, test_mask)
    DIR/edges-00000/etype.npy     int16 [n]   relation of each edge (typed variant only)

Edge chunks hold the edges in order (for a converted ``Graph``: CSR order, by destination); node chunks
cover contiguous node-id ranges. Each chunk can be read alone (``ChunkedGraph.edge_chunk(i)``,
``ChunkedGraph.node_rows(field, start, stop)``), so later readers (a partitioner, a worker) never need the
whole graph. ``meta.json`` keeps ``fingerprint``: :meth:`Graph.fingerprint` of the graph the folder loads to
(:func:`load_chunked`), computed once at write time from the written chunks; a partition directory made from
the loaded graph therefore carries the same fingerprint.

Typed variant (a :class:`~gnndist.hetero.HeteroGraph`, written by :class:`HeteroEdges`): the chunks hold the
graph's homogeneous view (:meth:`HeteroGraph.to_homogeneous`: node types one after another, features zero-padded
to the widest type, the target's labels and splits), every edge chunk adds ``etype.npy`` (the index of the
edge's relation), and ``meta.json`` key ``types`` holds the schema: ``node_types``, ``num_nodes`` and ``offsets``
per type, ``edge_types`` as ``[src, relation, dst]``, ``features`` (each type's own width, 0 featureless),
``target``, ``num_classes`` and ``fingerprint`` (:meth:`HeteroGraph.fingerprint`). :func:`chunked` loads it
as the HeteroGraph again (checked against that fingerprint); partitioners that stream chunks read the view.

Writes are atomic: chunks go into a hidden temp folder beside the target, every file is fsynced, then the
folder is renamed into place; an error or Ctrl-C removes the temp folder. Reading never unpickles
(``np.load(allow_pickle=False, mmap_mode="r")``) and every error names the chunk file.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

import gnndist
from gnndist.graph import NODE_FIELDS, ArrayStream, DegreeStats, Graph, GraphInfo, csr_order, fingerprint_fields
from gnndist.hetero import SCHEMA_KEYS, HeteroGraph
from gnndist.io import check_replaceable, fsync_dir, install_dir, read_meta_json, sha256_file, write_synced

FORMAT = "gnndist-chunked-graph"
FORMAT_VERSION = 1
META_FILE = "meta.json"
OPTIONAL_KEYS = ("degree_stats", "types")  # absent from folders written before they existed (types: and from untyped ones); read as None
DEFAULT_CHUNK_EDGES = 1 << 20
DEFAULT_CHUNK_NODES = 1 << 18
FINGERPRINT_EDGES = 1 << 20  # edges sorted at once while fingerprinting (more when chunk_edges is larger)
EDGE_FILES = ("src.npy", "dst.npy")
WEIGHT_FILE = "weight.npy"
ETYPE_FILE = "etype.npy"
ETYPE_DTYPE = np.dtype(np.int16)  # relation index per edge (typed variant); 2 bytes: graphs have far fewer relations
TYPES_KEYS = (*SCHEMA_KEYS, "num_nodes", "features", "target", "num_classes", "fingerprint")
Progress = Callable[[str, int, "int | None"], None]
PHASES = {"edges": "writing edge chunks", "nodes": "writing node chunks", "fingerprint": "fingerprinting"}
PHASE_UNITS = {"edges": "edge", "nodes": "node", "fingerprint": "edge"}


# ---------------------------------------------------------------------- what a writer reads
@dataclass(frozen=True)
class EdgeBlock:
    """Consecutive edges: ``src``/``dst`` int64 ``[n]`` numpy arrays (memory maps when read from chunks), ``weight`` float32 ``[n]`` or None,
    ``edge_type`` int16 ``[n]`` relation indices (typed variant) or None."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None = None
    edge_type: np.ndarray | None = None


@dataclass(frozen=True)
class FieldSpec:
    """One node field: numpy ``dtype`` and the shape of one row (``()`` for labels and masks, ``(F,)`` for features)."""

    dtype: np.dtype
    row_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": np.dtype(self.dtype).name, "shape": list(self.row_shape)}


class GraphSource(Protocol):
    """What :func:`write_chunked` reads: edges block by block, node rows by range (never the whole graph at once).

    Implemented by :class:`GraphEdges` (an in-memory ``Graph``), :class:`HeteroEdges` (an in-memory
    ``HeteroGraph``), :class:`ChunkedGraph` (another chunked folder) and the streamed generators
    (``gnndist.data.synthetic.sbm_stream``, ``rmat_stream``).
    """

    num_nodes: int
    num_classes: int  # 0 without labels
    node_fields: dict[str, FieldSpec]
    has_edge_weight: bool
    types: dict[str, Any] | None  # the typed variant's schema (meta.json 'types'; its edge blocks carry edge_type), else None
    description: dict[str, Any]  # what produced it, recorded in meta.json's 'source'

    def edge_blocks(self) -> Iterator[EdgeBlock]: ...

    def node_rows(self, name: str, start: int, stop: int) -> np.ndarray: ...


class GraphEdges:
    """A :class:`GraphSource` over an in-memory ``Graph``: edges in CSR order (by destination), node rows sliced."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.num_nodes = graph.num_nodes
        self.num_classes = graph.num_classes
        self.has_edge_weight = graph.edge_weight is not None
        self.node_fields = {name: FieldSpec(value.numpy().dtype, tuple(value.shape[1:])) for name, value in graph.node_data().items()}
        self.types: dict[str, Any] | None = None
        self.description: dict[str, Any] = {}

    def edge_blocks(self) -> Iterator[EdgeBlock]:
        """One block: every edge (views of the graph's arrays; the writer slices it into chunks)."""
        weight = self.graph.edge_weight.numpy() if self.has_edge_weight else None
        yield EdgeBlock(self.graph.indices.numpy(), self.graph.dst().numpy(), weight)

    def node_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        return getattr(self.graph, name)[start:stop].numpy()


class HeteroEdges(GraphEdges):
    """A :class:`GraphSource` over an in-memory :class:`~gnndist.hetero.HeteroGraph`: its homogeneous view with
    padded features, each edge's relation, and the schema (the typed variant, see the module docstring)."""

    def __init__(self, graph: HeteroGraph) -> None:
        view = graph.to_homogeneous()
        featured = any(nodes.x is not None for nodes in graph.nodes.values())
        super().__init__(view.graph.with_(x=graph.padded_features()) if featured else view.graph)
        if len(view.edge_types) > np.iinfo(ETYPE_DTYPE).max:
            raise ValueError(f"{len(view.edge_types)} relations do not fit the chunked format's {ETYPE_DTYPE} relation ids")
        self.edge_type = view.edge_type.numpy().astype(ETYPE_DTYPE)
        self.types = {
            **view.schema(),
            "num_nodes": {t: nodes.num_nodes for t, nodes in graph.nodes.items()},
            "features": {t: nodes.num_features for t, nodes in graph.nodes.items()},
            "target": graph.target,
            "num_classes": {t: nodes.num_classes for t, nodes in graph.nodes.items() if nodes.y is not None},
            "fingerprint": graph.fingerprint(),
        }

    def edge_blocks(self) -> Iterator[EdgeBlock]:
        """One block: every edge of the view in its CSR order, with its relation."""
        for block in super().edge_blocks():
            yield dataclasses.replace(block, edge_type=self.edge_type)


# ---------------------------------------------------------------------- meta.json
@dataclass(frozen=True)
class EdgeChunk:
    """One edge chunk as ``meta.json`` lists it: its folder ``name``, first edge ``start``, ``num_edges``, destination id range, file checksums."""

    name: str
    start: int
    num_edges: int
    dst_min: int
    dst_max: int
    files: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if key != "start"}


@dataclass(frozen=True)
class NodeChunk:
    """One node chunk: its folder ``name``, node ids ``start..stop`` (exclusive), file checksums."""

    name: str
    start: int
    stop: int
    files: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ChunkedMeta:
    """The content of ``meta.json`` (keys as in the README's chunked-format table).

    ``degree_stats`` (the in-degree statistics ``aggregation=auto`` needs) is counted once at write time; folders
    written before it existed lack it (None): :meth:`ChunkedGraph.degree_stats` then counts it from the chunks.
    """

    format: str
    format_version: int
    gnndist_version: str
    num_nodes: int
    num_edges: int
    num_classes: int
    fingerprint: str
    chunk_edges: int
    chunk_nodes: int
    node_data: dict[str, FieldSpec]
    edge_weight: bool
    edge_chunks: list[EdgeChunk]
    node_chunks: list[NodeChunk]
    source: dict[str, Any]
    degree_stats: DegreeStats | None = None
    types: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        values["degree_stats"] = None if self.degree_stats is None else dataclasses.asdict(self.degree_stats)
        values["node_data"] = {name: spec.to_dict() for name, spec in self.node_data.items()}
        values["edge_chunks"] = [chunk.to_dict() for chunk in self.edge_chunks]
        values["node_chunks"] = [chunk.to_dict() for chunk in self.node_chunks]
        return values

    @classmethod
    def from_dict(cls, values: Any, path: Path) -> "ChunkedMeta":
        """Validates parsed ``meta.json``; errors name the file and the key."""
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            raise ValueError(f"{path} is not the meta.json of a chunked graph (expected 'format': {FORMAT!r})")
        version = values.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version:
            raise ValueError(f"{path}: expected an integer 'format_version' >= 1 (got {version!r})")
        if version > FORMAT_VERSION:
            raise ValueError(f"{path} has format_version {version}, newer than this gnndist {gnndist.__version__} reads (<= {FORMAT_VERSION}); upgrade gnndist or convert again")
        keys = [field.name for field in fields(cls) if field.name not in OPTIONAL_KEYS]
        missing = [key for key in keys if key not in values]
        if missing:
            raise ValueError(f"{path} lacks key(s) {missing}")
        try:
            node_data = {name: FieldSpec(np.dtype(spec["dtype"]), tuple(spec["shape"])) for name, spec in values["node_data"].items()}
            unknown = sorted(set(node_data) - set(NODE_FIELDS))
            if unknown:
                raise ValueError(f"unknown node field(s) {unknown}; expected some of {list(NODE_FIELDS)}")
            for name, spec in node_data.items():
                if spec.dtype.kind not in "biuf":
                    raise ValueError(f"node field {name!r} has dtype {spec.dtype}; expected bool, integer or float")
            edge_chunks, start = [], 0
            for chunk in values["edge_chunks"]:
                edge_chunks.append(EdgeChunk(start=start, **chunk))
                start += chunk["num_edges"]
            if start != values["num_edges"]:
                raise ValueError(f"the edge chunks hold {start} edges, 'num_edges' says {values['num_edges']}")
            node_chunks = [NodeChunk(**chunk) for chunk in values["node_chunks"]]
            bounds = [0, *(chunk.stop for chunk in node_chunks)]
            covered = [chunk.start for chunk in node_chunks] == bounds[:-1] and bounds[-1] == values["num_nodes"]
            if (node_data and not covered) or (not node_data and node_chunks):
                raise ValueError(f"the node chunks do not cover nodes 0..{values['num_nodes']} in order (or there are node chunks without node_data)")
            degree_stats = None if values.get("degree_stats") is None else DegreeStats(int(values["degree_stats"]["max_in_degree"]), float(values["degree_stats"]["degree_cv"]))
            types = values.get("types")
            if types is not None and (not isinstance(types, dict) or sorted(types) != sorted(TYPES_KEYS)):
                raise ValueError(f"'types' must be null or an object with the keys {list(TYPES_KEYS)} (got {types!r:.200})")
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: malformed chunk list, node_data or degree_stats ({type(error).__name__}: {error})") from error
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        scalars = {key: values[key] for key in keys if key not in ("node_data", "edge_chunks", "node_chunks")}
        return cls(**scalars, node_data=node_data, edge_chunks=edge_chunks, node_chunks=node_chunks, degree_stats=degree_stats, types=types)


def is_chunked_directory(directory: Path) -> bool:
    """Whether ``directory`` carries gnndist's marker: a ``meta.json`` object with ``"format": "gnndist-chunked-graph"``."""
    try:
        values = json.loads((Path(directory) / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and values.get("format") == FORMAT


def check_chunked_replaceable(directory: Path, force: bool, *, flag: str = "--force") -> None:
    """Raises unless ``directory`` may be written: absent, or (with ``force``) empty or a chunked graph gnndist wrote."""
    check_replaceable(Path(directory), force, kind="Chunked graph folder", ours="a chunked graph gnndist wrote", is_ours=is_chunked_directory, flag=flag)


# ---------------------------------------------------------------------- reading
class ChunkedGraph:
    """A chunked graph folder opened for reading: ``meta`` plus chunk readers; nothing is loaded up front.

    Every reader memory-maps the chunk files it needs and validates them (present, ``.npy`` without pickles,
    dtype and shape as ``meta.json`` says, node ids in range; with ``verify``, the sha256), raising
    ``FileNotFoundError``/``ValueError`` that name the chunk file. It is also a :class:`GraphSource`, so
    :func:`write_chunked` can re-chunk a folder.
    """

    def __init__(self, directory: Path, meta: ChunkedMeta, *, verify: bool = True) -> None:
        self.directory = directory
        self.meta = meta
        self.verify_reads = verify
        self.num_nodes = meta.num_nodes
        self.num_classes = meta.num_classes
        self.node_fields = meta.node_data
        self.has_edge_weight = meta.edge_weight
        self.types = meta.types
        self.description = {"dataset": f"chunked:{directory}"}

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True) -> "ChunkedGraph":
        """Reads and validates ``path/meta.json``; ``verify`` checks each chunk file's sha256 when it is read."""
        directory = Path(path)
        values = read_meta_json(directory, META_FILE, kind="Chunked graph folder")
        return cls(directory, ChunkedMeta.from_dict(values, directory / META_FILE), verify=verify)

    def info(self) -> GraphInfo:
        """Sizes, widths and fingerprint from ``meta.json`` alone (no chunk is read)."""
        x, y = self.node_fields.get("x"), self.node_fields.get("y")
        num_features = 0 if x is None else int(np.prod(x.row_shape, dtype=np.int64))
        multilabel = y is not None and y.dtype.kind == "f"
        return GraphInfo(self.num_nodes, self.meta.num_edges, num_features, self.num_classes, self.meta.fingerprint, y is not None, multilabel)

    def degree_stats(self) -> DegreeStats:
        """The in-degree statistics ``aggregation=auto`` needs: from ``meta.json``, or, for a folder written before
        they were recorded, counted from the chunks (one pass; ``gnndist convert`` again records them)."""
        if self.meta.degree_stats is not None:
            return self.meta.degree_stats
        return DegreeStats.of(torch.from_numpy(self.in_degrees()))

    def in_degrees(self) -> np.ndarray:
        """``[num_nodes]`` int64 in-degree of every node, counted chunk by chunk (memory: one chunk + O(num_nodes))."""
        counts = np.zeros(self.num_nodes, np.int64)
        for block in self.edge_blocks():
            counts += np.bincount(block.dst, minlength=self.num_nodes)
        return counts

    def _load(self, folder: str, file: str, checksums: dict[str, str], dtype: np.dtype, shape: tuple[int, ...], verify: bool) -> np.ndarray:
        """Memory-maps ``folder/file`` and checks it against ``meta.json`` (checksum listed, sha256 when ``verify``, dtype, shape)."""
        label = f"chunk {folder}/{file}"
        path = self.directory / folder / file
        if file not in checksums:
            raise ValueError(f"{label}: {self.directory / META_FILE} lists no checksum for it")
        if not path.is_file():
            raise FileNotFoundError(f"{label} is missing ({path})")
        if verify:
            actual = sha256_file(path)
            if actual != checksums[file]:
                raise ValueError(f"{label}: sha256 mismatch (expected {checksums[file]}, got {actual}): the file is corrupted or was modified")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{label} is not a readable .npy array ({path}): {error}") from error
        if array.dtype != dtype or array.shape != shape:
            raise ValueError(f"{label}: expected dtype {np.dtype(dtype)} and shape {shape} (got {array.dtype}, {array.shape})")
        return array

    def edge_chunk(self, index: int, *, verify: bool | None = None) -> EdgeBlock:
        """Edge chunk ``index`` as memory-mapped arrays, validated (node ids in ``[0, num_nodes)``)."""
        chunk = self.meta.edge_chunks[index]
        verify = self.verify_reads if verify is None else verify
        shape = (chunk.num_edges,)
        src, dst = (self._load(chunk.name, file, chunk.files, np.dtype(np.int64), shape, verify) for file in EDGE_FILES)
        weight = self._load(chunk.name, WEIGHT_FILE, chunk.files, np.dtype(np.float32), shape, verify) if self.has_edge_weight else None
        edge_type = self._load(chunk.name, ETYPE_FILE, chunk.files, ETYPE_DTYPE, shape, verify) if self.types is not None else None
        checks = [(EDGE_FILES[0], src, self.num_nodes), (EDGE_FILES[1], dst, self.num_nodes)]
        if edge_type is not None:
            checks.append((ETYPE_FILE, edge_type, len(self.types["edge_types"])))
        for file, ids, bound in checks:
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= bound):
                bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
                raise ValueError(f"chunk {chunk.name}/{file}: {'relation' if file == ETYPE_FILE else 'node'} id {bad} out of range [0, {bound})")
        return EdgeBlock(src, dst, weight, edge_type)

    def edge_blocks(self) -> Iterator[EdgeBlock]:
        """Every edge chunk in order (one at a time, memory-mapped)."""
        for index in range(len(self.meta.edge_chunks)):
            yield self.edge_chunk(index)

    def node_chunk(self, index: int, name: str, *, verify: bool | None = None) -> np.ndarray:
        """Field ``name`` of node chunk ``index`` (its rows ``start..stop``), memory-mapped and validated."""
        chunk, spec = self.meta.node_chunks[index], self.node_fields[name]
        return self._load(chunk.name, f"{name}.npy", chunk.files, spec.dtype, (chunk.stop - chunk.start, *spec.row_shape), self.verify_reads if verify is None else verify)

    def node_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` of node field ``name`` (a copy, read from the chunks that cover them)."""
        if name not in self.node_fields:
            raise KeyError(f"The chunked graph {self.directory} has no node field {name!r}; it has {sorted(self.node_fields)}")
        if not 0 <= start <= stop <= self.num_nodes:
            raise ValueError(f"Expected 0 <= start <= stop <= {self.num_nodes} (got {start}..{stop})")
        pieces = []
        for index, chunk in enumerate(self.meta.node_chunks):
            if chunk.stop > start and chunk.start < stop:
                rows = self.node_chunk(index, name)
                pieces.append(rows[max(start, chunk.start) - chunk.start:min(stop, chunk.stop) - chunk.start])
        spec = self.node_fields[name]
        return np.concatenate(pieces) if pieces else np.empty((0, *spec.row_shape), spec.dtype)

    def verify(self, chunk: str | None = None) -> None:
        """Checks every chunk (or the one named ``chunk``, e.g. ``"edges-00003"``): files, sha256, dtypes, shapes, id ranges."""
        names = [c.name for c in self.meta.edge_chunks] + [c.name for c in self.meta.node_chunks]
        if chunk is not None and chunk not in names:
            raise KeyError(f"The chunked graph {self.directory} has no chunk {chunk!r} (chunks: {names[0]} .. {names[-1]})")
        for index, edge_chunk in enumerate(self.meta.edge_chunks):
            if chunk in (None, edge_chunk.name):
                self.edge_chunk(index, verify=True)
        for index, node_chunk in enumerate(self.meta.node_chunks):
            if chunk in (None, node_chunk.name):
                for name in self.node_fields:
                    self.node_chunk(index, name, verify=True)

    def to_graph(self) -> Graph:
        """The whole graph in memory (reads every chunk once); its fingerprint must equal ``meta.fingerprint``."""
        blocks = list(self.edge_blocks())
        src = np.concatenate([block.src for block in blocks]) if blocks else np.empty(0, np.int64)
        dst = np.concatenate([block.dst for block in blocks]) if blocks else np.empty(0, np.int64)
        weight = np.concatenate([block.weight for block in blocks]) if blocks and self.has_edge_weight else None
        del blocks
        node_data = {name: torch.from_numpy(self.node_rows(name, 0, self.num_nodes)) for name in self.node_fields}
        graph = Graph.from_edge_index(
            torch.from_numpy(np.stack([src, dst])), self.num_nodes, edge_weight=None if weight is None else torch.from_numpy(weight),
            num_classes=self.num_classes or None, **node_data,
        )
        fingerprint = graph.fingerprint()
        if fingerprint != self.meta.fingerprint:
            raise ValueError(f"{self.directory / META_FILE}: fingerprint {self.meta.fingerprint} does not match the loaded graph's {fingerprint} (chunks replaced or meta.json edited)")
        return graph

    def to_hetero(self) -> HeteroGraph:
        """The whole heterogeneous graph of a typed folder in memory (every chunk read once), checked against
        ``types.fingerprint``."""
        if self.types is None:
            raise ValueError(f"{self.directory / META_FILE} has no 'types': the folder holds a homogeneous graph (load it with to_graph)")
        types, blocks = self.types, list(self.edge_blocks())
        src, dst, kind = (np.concatenate([getattr(b, name) for b in blocks]) if blocks else np.empty(0, np.int64) for name in ("src", "dst", "edge_type"))
        del blocks
        offsets, edges = types["offsets"], {}
        for index, (src_type, relation, dst_type) in enumerate(types["edge_types"]):
            mine = kind == index
            edges[(src_type, relation, dst_type)] = torch.from_numpy(np.stack([src[mine] - offsets[src_type], dst[mine] - offsets[dst_type]]))
        rows = {t: (offsets[t], offsets[t] + n) for t, n in types["num_nodes"].items()}
        node_data: dict[str, dict[str, Any]] = {name: {} for name in NODE_FIELDS}
        for t, (start, stop) in rows.items():
            if types["features"][t]:
                node_data["x"][t] = torch.from_numpy(self.node_rows("x", start, stop)[:, : types["features"][t]].copy())
        target = types["target"]
        if target is not None:
            for name in NODE_FIELDS[1:]:
                if name in self.node_fields:
                    node_data[name][target] = torch.from_numpy(self.node_rows(name, *rows[target]))
        graph = HeteroGraph.from_edge_index(types["num_nodes"], edges, num_classes=types["num_classes"], target=target, **node_data)
        fingerprint = graph.fingerprint()
        if fingerprint != types["fingerprint"]:
            raise ValueError(f"{self.directory / META_FILE}: types.fingerprint {types['fingerprint']} does not match the loaded graph's {fingerprint} (chunks replaced or meta.json edited)")
        return graph


def open_chunked(path: str, *, root: str | None = None, verify: bool = True) -> ChunkedGraph:
    """The chunked folder of the ``chunked:PATH`` dataset, opened (``meta.json`` read; no chunk loaded); arguments as :func:`chunked`."""
    directory = Path(root) / path if root is not None and not Path(path).is_absolute() else Path(path)
    return ChunkedGraph.open(directory, verify=verify)


def chunked(path: str, *, root: str | None = None, verify: bool = True) -> Graph | HeteroGraph:
    """The ``chunked:PATH`` dataset: the whole graph of a chunked folder (relative ``path`` resolves against ``root``);
    a typed folder's as a HeteroGraph.

    Args:
        path: the folder :func:`write_chunked` (``gnndist convert``) wrote.
        root: folder that a relative ``path`` is relative to.
        verify: check every chunk's sha256 (reads each file twice).
    """
    graph = open_chunked(path, root=root, verify=verify)
    return graph.to_hetero() if graph.types is not None else graph.to_graph()


# ---------------------------------------------------------------------- the fingerprint, from chunks
def _csr_column(graph: ChunkedGraph, indptr: np.ndarray, column: str, budget: int, report: Progress | None = None) -> Iterator[np.ndarray]:
    """``column`` ("src" or "weight") of every edge in CSR order (by destination, then source; ties in chunk order), in pieces.

    Destination ranges holding at most ``budget`` edges (or one node) are gathered from the chunks whose
    ``dst_min..dst_max`` overlap them and sorted, so memory stays ~ ``budget`` edges.
    """
    start = 0
    while start < graph.num_nodes:
        stop = max(int(np.searchsorted(indptr, indptr[start] + budget, side="right")) - 1, start + 1)
        stop = min(stop, graph.num_nodes)
        src, dst, values = [], [], []
        for index, chunk in enumerate(graph.meta.edge_chunks):
            if chunk.num_edges and chunk.dst_max >= start and chunk.dst_min < stop:
                block = graph.edge_chunk(index, verify=False)
                keep = (block.dst >= start) & (block.dst < stop)
                src.append(block.src[keep])
                dst.append(block.dst[keep])
                values.append((block.src if column == "src" else block.weight)[keep])
        if src:
            order = csr_order(torch.from_numpy(np.concatenate(dst)), torch.from_numpy(np.concatenate(src)), graph.num_nodes).numpy()
            yield np.concatenate(values)[order]
        if report is not None:
            report("fingerprint", int(indptr[stop]), int(indptr[-1]))
        start = stop


def _node_pieces(graph: ChunkedGraph, name: str) -> Iterator[np.ndarray]:
    for index in range(len(graph.meta.node_chunks)):
        yield graph.node_chunk(index, name, verify=False)


def chunked_fingerprint(graph: ChunkedGraph, budget: int = FINGERPRINT_EDGES, report: Progress | None = None, in_degree: np.ndarray | None = None) -> str:
    """:meth:`Graph.fingerprint` of ``graph.to_graph()``, computed from the chunks with memory ~ ``budget`` edges + O(num_nodes).

    ``report("fingerprint", edges_hashed, num_edges)`` is called after each destination range; ``in_degree``
    (``graph.in_degrees()``, counted when None) lets a caller that also needs it count it once.
    """
    indptr = np.concatenate([[0], np.cumsum(graph.in_degrees() if in_degree is None else in_degree)])
    num_edges = int(indptr[-1])
    values: dict[str, Any] = {field.name: None for field in fields(Graph)}
    values["indptr"] = ArrayStream(np.dtype(np.int64), indptr.shape, (indptr,))
    values["indices"] = ArrayStream(np.dtype(np.int64), (num_edges,), _csr_column(graph, indptr, "src", budget, report))
    for name, spec in graph.node_fields.items():
        values[name] = ArrayStream(spec.dtype, (graph.num_nodes, *spec.row_shape), _node_pieces(graph, name))
    if graph.has_edge_weight:
        values["edge_weight"] = ArrayStream(np.dtype(np.float32), (num_edges,), _csr_column(graph, indptr, "weight", budget))
    values["num_classes"] = graph.num_classes
    return fingerprint_fields(values)


# ---------------------------------------------------------------------- writing
def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _rechunk(blocks: Iterator[EdgeBlock], chunk_edges: int) -> Iterator[EdgeBlock]:
    """The edges of ``blocks`` cut into chunks of exactly ``chunk_edges`` (the last one shorter)."""
    pending: list[EdgeBlock] = []
    held = 0
    for block in blocks:
        position, size = 0, block.src.size
        while position < size:
            take = min(chunk_edges - held, size - position)
            part = slice(position, position + take)
            pending.append(EdgeBlock(*(None if array is None else array[part] for array in (block.src, block.dst, block.weight, block.edge_type))))
            held += take
            position += take
            if held == chunk_edges:
                yield _concat(pending)
                pending, held = [], 0
    if held:
        yield _concat(pending)


def _concat(blocks: list[EdgeBlock]) -> EdgeBlock:
    weights, edge_types = [block.weight for block in blocks], [block.edge_type for block in blocks]
    return EdgeBlock(
        np.concatenate([block.src for block in blocks]).astype(np.int64, copy=False),
        np.concatenate([block.dst for block in blocks]).astype(np.int64, copy=False),
        None if weights[0] is None else np.concatenate(weights).astype(np.float32, copy=False),
        None if edge_types[0] is None else np.concatenate(edge_types).astype(ETYPE_DTYPE, copy=False),
    )


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected {name} to be an integer >= 1 (got {value!r})")
    return value


def write_chunked(
    source: GraphSource,
    directory: str | os.PathLike,
    *,
    chunk_edges: int = DEFAULT_CHUNK_EDGES,
    chunk_nodes: int = DEFAULT_CHUNK_NODES,
    force: bool = False,
    progress: bool | Progress = False,
) -> ChunkedMeta:
    """Writes ``source`` as a chunked graph folder, atomically, holding one chunk (plus node-sized arrays) at a time.

    Args:
        source: a :class:`GraphSource` (``GraphEdges(graph)``, a ``ChunkedGraph``, a streamed generator).
        directory: the folder to create; it must not exist unless ``force``.
        chunk_edges: edges per edge chunk (>= 1; default 2**20).
        chunk_nodes: nodes per node-data chunk (>= 1; default 2**18).
        force: replace an existing folder if it is empty or a chunked graph gnndist wrote.
        progress: show a progress bar per phase (True), or call ``progress(phase, done, total)`` after each
            step of the phases ``"edges"`` (edges written), ``"nodes"`` (node rows written) and
            ``"fingerprint"`` (edges hashed); ``total`` is None where unknown.

    Returns:
        The written :class:`ChunkedMeta`.

    Raises:
        FileExistsError: ``directory`` exists and may not be replaced (see :func:`check_chunked_replaceable`).
        ValueError: an edge of ``source`` has a node id out of range, or a node block has the wrong shape
            (naming the chunk being written); errors of a chunked ``source`` name its chunk file.
    """
    directory = Path(directory)
    _positive("chunk_edges", chunk_edges)
    _positive("chunk_nodes", chunk_nodes)
    check_chunked_replaceable(directory, force)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    bars: dict[str, Any] = {}
    try:
        report = _progress_bars(progress, bars)
        edge_chunks = _write_edges(source, tmp, chunk_edges, report)
        node_chunks = _write_nodes(source, tmp, chunk_nodes, report)
        meta = ChunkedMeta(
            format=FORMAT, format_version=FORMAT_VERSION, gnndist_version=gnndist.__version__,
            num_nodes=source.num_nodes, num_edges=sum(chunk.num_edges for chunk in edge_chunks), num_classes=source.num_classes,
            fingerprint="", chunk_edges=chunk_edges, chunk_nodes=chunk_nodes, node_data=dict(source.node_fields),
            edge_weight=source.has_edge_weight, edge_chunks=edge_chunks, node_chunks=node_chunks, source=source.description,
            types=source.types,
        )
        written = ChunkedGraph(tmp, meta, verify=False)
        in_degree = written.in_degrees()
        fingerprint = chunked_fingerprint(written, max(FINGERPRINT_EDGES, chunk_edges), report, in_degree)
        meta = dataclasses.replace(meta, fingerprint=fingerprint, degree_stats=DegreeStats.of(torch.from_numpy(in_degree)))
        write_synced(tmp / META_FILE, (json.dumps(meta.to_dict(), indent=2) + "\n").encode())
        fsync_dir(tmp)
        if directory.exists():
            check_chunked_replaceable(directory, force)  # again: it may have appeared while the chunks were written
        install_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for bar in bars.values():
            bar.close()
    return meta


def _progress_bars(progress: bool | Progress, bars: dict[str, Any]) -> Progress | None:
    """``progress`` itself, or (True) a callback drawing one tqdm bar per phase into ``bars``, or None."""
    if callable(progress):
        return progress
    if not progress:
        return None
    from tqdm.auto import tqdm

    def report(phase: str, done: int, total: int | None) -> None:
        if phase not in bars:
            bars[phase] = tqdm(desc=PHASES[phase], total=total, unit=PHASE_UNITS[phase], unit_scale=True, disable=None, dynamic_ncols=True)
        bars[phase].update(done - bars[phase].n)

    return report


def _write_edges(source: GraphSource, tmp: Path, chunk_edges: int, report: Progress | None) -> list[EdgeChunk]:
    chunks: list[EdgeChunk] = []
    written = 0
    for index, block in enumerate(_rechunk(source.edge_blocks(), chunk_edges)):
        name = f"edges-{index:05d}"
        for file, ids in zip(EDGE_FILES, (block.src, block.dst)):
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= source.num_nodes):
                bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
                raise ValueError(f"writing chunk {name}/{file}: node id {bad} out of range [0, {source.num_nodes})")
        (tmp / name).mkdir()
        arrays = dict(zip(EDGE_FILES, (block.src, block.dst)))
        if source.has_edge_weight:
            arrays[WEIGHT_FILE] = block.weight
        if source.types is not None:
            arrays[ETYPE_FILE] = block.edge_type
        files = {file: write_synced(tmp / name / file, _npy_bytes(array)) for file, array in arrays.items()}
        fsync_dir(tmp / name)
        dst_min, dst_max = (int(block.dst.min()), int(block.dst.max())) if block.dst.size else (0, -1)
        chunks.append(EdgeChunk(name, written, int(block.src.size), dst_min, dst_max, files))
        written += int(block.src.size)
        if report is not None:
            report("edges", written, None)
    return chunks


def _write_nodes(source: GraphSource, tmp: Path, chunk_nodes: int, report: Progress | None) -> list[NodeChunk]:
    chunks: list[NodeChunk] = []
    if not source.node_fields:
        return chunks
    for index, start in enumerate(range(0, source.num_nodes, chunk_nodes)):
        stop = min(start + chunk_nodes, source.num_nodes)
        name = f"nodes-{index:05d}"
        (tmp / name).mkdir()
        files = {}
        for field, spec in source.node_fields.items():
            rows = np.asarray(source.node_rows(field, start, stop))
            if rows.dtype != spec.dtype or rows.shape != (stop - start, *spec.row_shape):
                raise ValueError(f"writing chunk {name}/{field}.npy: expected dtype {np.dtype(spec.dtype)} and shape {(stop - start, *spec.row_shape)} (got {rows.dtype}, {rows.shape})")
            files[f"{field}.npy"] = write_synced(tmp / name / f"{field}.npy", _npy_bytes(rows))
        fsync_dir(tmp / name)
        chunks.append(NodeChunk(name, start, stop, files))
        if report is not None:
            report("nodes", stop, source.num_nodes)
    return chunks


def open_source(spec: str, options: dict[str, Any], *, in_memory: bool = False) -> GraphSource:
    """The :class:`GraphSource` ``gnndist convert`` reads for a dataset spec.

    ``sbm`` and ``rmat`` stream (``gnndist.data.synthetic.sbm_stream``/``rmat_stream``: never all edges at once)
    unless ``in_memory``, which converts exactly the graph ``dataset.name=sbm`` trains on; ``chunked:PATH``
    re-chunks chunk by chunk; every other dataset is loaded whole and written in CSR order.
    """
    from gnndist.data import synthetic
    from gnndist.data.registry import check_dataset_options, load_dataset, split_spec

    check_dataset_options(spec, options)
    name, arg = split_spec(spec)
    if not in_memory and name == "chunked":
        root = options.get("root")
        directory = Path(root) / arg if root is not None and not Path(arg).is_absolute() else Path(arg)
        source: GraphSource = ChunkedGraph.open(directory, verify=options.get("verify", True))
    elif not in_memory and name in ("sbm", "rmat"):
        source = getattr(synthetic, f"{name}_stream")(**options)
    else:
        graph = load_dataset(spec, **options)
        source = HeteroEdges(graph) if isinstance(graph, HeteroGraph) else GraphEdges(graph)
    source.description = {"dataset": spec, "options": options, "streamed": not in_memory and name in ("sbm", "rmat")}
    return source
