"""On-disk partition directory: versioned ``meta.json``, the partition book, one folder per part.

Layout::

    DIR/meta.json                       format version, graph fingerprint, partitioner, quality, sha256 per file
    DIR/book.safetensors                node_part [N], local_id [N]
    DIR/part-00000/part.safetensors     the part's tensors (see Part)
    DIR/part-00000/part.json            the part's integers

Writes are atomic: everything goes into a hidden sibling temp directory, every file and folder is
fsynced, then the directory is renamed into place, so an interrupted run never leaves a directory
that looks complete. Reading never unpickles (safetensors + JSON) and checks every file's sha256.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Mapping

import torch
from safetensors import SafetensorError, safe_open

import gnndist
from gnndist.graph import Graph
from gnndist.hetero import SCHEMA_KEYS
from gnndist.io import check_replaceable as check_replaceable_dir
from gnndist.io import fsync_dir, install_dir, read_meta_json, sha256_file, write_synced
from gnndist.partition.book import PartitionBook
from gnndist.partition.halo import ExchangePlan
from gnndist.partition.hetero import type_part
from gnndist.partition.part import OPTIONAL_FIELDS, TENSOR_FIELDS, Part, iter_parts
from gnndist.partition.quality import QualityReport

if TYPE_CHECKING:
    from gnndist.hetero import HomogeneousView
    from gnndist.partitioners.base import PartitionResult

FORMAT_VERSION = 1
META_FILE = "meta.json"
BOOK_FILE = "book.safetensors"
PART_TENSORS = "part.safetensors"
PART_INFO = "part.json"
PART_INFO_KEYS = ("part_id", "num_parts", "num_owned", "halo_hops", "num_halo_per_hop")
OPTIONAL_META_KEYS = ("types",)  # absent from directories written before it existed; read as None

Progress = Callable[[int, int], None]


def part_folder(part_id: int) -> str:
    return f"part-{part_id:05d}"


def partition_key(graph_fingerprint: str, method: str, options: dict[str, Any], seed: int, num_parts: int, halo_hops: int) -> str:
    """A short hash of everything that determines a partition directory's content (for reuse checks)."""
    identity = dict(graph=graph_fingerprint, method=method, options=options, seed=seed, num_parts=num_parts, halo_hops=halo_hops)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass
class PartitionMeta:
    """The content of ``meta.json``.

    Attributes:
        format_version: on-disk format version (this gnndist reads up to ``FORMAT_VERSION``).
        graph_fingerprint, num_nodes, num_edges: the partitioned graph.
        method, options, seed: the partitioner that produced the assignment.
        num_parts, halo_hops: shape of the partition.
        key: :func:`partition_key` of the above, to decide whether a directory can be reused.
        quality: the quality report.
        files: sha256 of every file, by path relative to the directory.
        gnndist_version: the version that wrote it.
        types: for a heterogeneous graph's view, its schema (``node_types``, ``edge_types`` as
            ``[src, relation, dst]``, ``offsets``: each node type's first global id), which the parts'
            ``node_type``/``edge_type`` index; None for a homogeneous graph (and in directories written before it).
    """

    format_version: int
    graph_fingerprint: str
    num_nodes: int
    num_edges: int
    method: str
    options: dict[str, Any]
    seed: int
    num_parts: int
    halo_hops: int
    key: str
    quality: QualityReport
    files: dict[str, str]
    gnndist_version: str
    types: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["quality"] = self.quality.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Any, path: Path) -> "PartitionMeta":
        """Validates parsed ``meta.json`` content; errors name the file and the key."""
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object (got {type(values).__name__})")
        version = values.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"{path}: expected an integer 'format_version' (got {version!r})")
        if version > FORMAT_VERSION:
            raise ValueError(f"{path} has format_version {version}, newer than this gnndist {gnndist.__version__} reads (<= {FORMAT_VERSION}); upgrade gnndist or partition again")
        if version < 1:
            raise ValueError(f"{path}: expected format_version in [1, {FORMAT_VERSION}] (got {version})")
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in names if name not in values and name not in OPTIONAL_META_KEYS]
        if missing:
            raise ValueError(f"{path} lacks key(s) {missing}")
        try:
            quality = QualityReport.from_dict(values["quality"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: invalid 'quality': {error}") from error
        types = values.get("types")
        if types is not None and (not isinstance(types, dict) or sorted(types) != sorted(SCHEMA_KEYS)):
            raise ValueError(f"{path}: 'types' must be null or an object with the keys {list(SCHEMA_KEYS)} (got {types!r:.200})")
        return cls(**{name: values[name] for name in names if name in values and name != "quality"}, quality=quality)


SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


@dataclasses.dataclass(frozen=True)
class RowBlocks:
    """A tensor that is written block by block and never held whole: its ``shape``, ``dtype``, and ``blocks()``,
    which yields its rows in order (contiguous tensors of that dtype; their sizes add up to the shape's)."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    blocks: Callable[[], Iterable[torch.Tensor]]


def _write_tensors(path: Path, tensors: Mapping[str, torch.Tensor | RowBlocks]) -> str:
    """Writes ``tensors`` as one safetensors file, fsynced; returns its sha256.

    The file is the safetensors format (8-byte header length, JSON header, then every tensor's bytes, each at
    an offset its item size divides) and is read back with safetensors' ``safe_open``. It is written here and
    not by ``safetensors.torch.save_file`` because that takes whole tensors and the sha256 then needs a second
    read of the file: here every tensor streams into the file and the digest at once, and a :class:`RowBlocks`
    (a part's feature rows, gathered from the chunks block by block) never exists whole. On a 2M-node ``sbm``
    part (1.2M rows, 632 MB of features) gathering, writing, hashing and syncing took 1.2-1.3 s this way
    against 2.0-4.4 s through a whole feature tensor and ``save_file`` (fresh memory is slow to touch here:
    ~2.6 s per GiB the first time on this VM).
    """
    order = sorted(tensors, key=lambda name: (-tensors[name].dtype.itemsize, name))  # each tensor aligned to its item size
    header, offset = {}, 0
    for name in order:
        value = tensors[name]
        size = math.prod(value.shape) * value.dtype.itemsize
        header[name] = {"dtype": SAFETENSORS_DTYPES[value.dtype], "shape": list(value.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-aligned, as safetensors pads its header
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        def put(data: Any) -> int:
            file.write(data)
            digest.update(data)
            return len(data)

        put(len(text).to_bytes(8, "little"))
        put(text)
        for name in order:
            value = tensors[name]
            blocks = value.blocks() if isinstance(value, RowBlocks) else (value,)
            written = sum(put(memoryview(block.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())) for block in blocks)
            expected = header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            if written != expected:
                raise ValueError(f"{path}: tensor {name!r} gave {written} bytes, expected {expected} (shape {list(value.shape)}, {value.dtype})")
        file.flush()
        os.fsync(file.fileno())
    return digest.hexdigest()


def _progress_callback(progress: bool | Progress, total: int) -> tuple[Progress | None, Callable[[], None]]:
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="writing parts", unit="part", disable=None)
    return (lambda done, _total: bar.update(done - bar.n)), bar.close


def save_partition(
    graph: Graph,
    result: "PartitionResult",
    directory: str | os.PathLike,
    *,
    halo_hops: int = 1,
    force: bool = False,
    feature_width: int | None = None,
    progress: bool | Progress = False,
    types: "HomogeneousView | None" = None,
) -> PartitionMeta:
    """Builds every part of ``result`` and writes the partition directory atomically.

    Args:
        graph: the partitioned graph.
        result: the partitioning (``Partitioner.partition`` output).
        directory: target directory; it must not exist unless ``force``.
        halo_hops: halo rings per part (>= 1).
        force: replace an existing directory, if it is empty or a partition directory gnndist wrote
            (atomically: the new one is built beside, the old one renamed aside, the new one renamed
            in, then the old one deleted).
        feature_width: row width for the quality report's exchange prediction (default: the graph's).
        progress: show a progress bar (True), or call ``progress(parts_written, num_parts)``.
        types: when ``graph`` is a heterogeneous graph's view, its types (the quality report adds the balance
            per node type and the cut per relation).

    Returns:
        The written :class:`PartitionMeta` (with the quality report).

    Raises:
        FileExistsError: ``directory`` exists and ``force`` is False, or it holds something gnndist
            did not write (see :func:`check_replaceable`).
        ValueError: ``result`` does not belong to ``graph`` or ``halo_hops`` < 1.
    """
    directory = Path(directory)
    check_replaceable(directory, force)
    if result.num_nodes != graph.num_nodes:
        raise ValueError(f"The partitioning covers {result.num_nodes} nodes but the graph has {graph.num_nodes}")
    if isinstance(halo_hops, bool) or not isinstance(halo_hops, int) or halo_hops < 1:
        raise ValueError(f"Expected halo_hops >= 1 (got {halo_hops!r})")
    plan = ExchangePlan.build(graph, result.node_part, result.num_parts)
    quality = QualityReport.compute(graph, result, plan=plan, feature_width=feature_width, types=types)
    fingerprint = graph.fingerprint()

    tmp = new_temp_dir(directory)
    report, close = _progress_callback(progress, result.num_parts)
    try:
        files: dict[str, str] = {}
        files.update(write_book(tmp, result.node_part, result.num_parts))
        for part in iter_parts(graph, result, halo_hops=halo_hops, plan=plan):
            if types is not None:
                part = type_part(part, types)
            part_id = part.part_id
            (tmp / part_folder(part_id)).mkdir()
            files.update(write_part(tmp, part))
            del part
            if report is not None:
                report(part_id + 1, result.num_parts)
        meta = PartitionMeta(
            format_version=FORMAT_VERSION,
            graph_fingerprint=fingerprint,
            num_nodes=graph.num_nodes,
            num_edges=graph.num_edges,
            method=result.method,
            options=result.options,
            seed=result.seed,
            num_parts=result.num_parts,
            halo_hops=halo_hops,
            key=partition_key(fingerprint, result.method, result.options, result.seed, result.num_parts, halo_hops),
            quality=quality,
            files=files,
            gnndist_version=gnndist.__version__,
            types=None if types is None else types.schema(),
        )
        install_partition(tmp, directory, meta, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        close()
    return meta


def new_temp_dir(directory: Path, kind: str = "tmp") -> Path:
    """A fresh hidden folder beside ``directory`` (``.NAME.KIND-PID-RANDOM``), for output that is renamed into place later."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def write_book(tmp: Path, node_part: torch.Tensor, num_parts: int) -> dict[str, str]:
    """Writes the partition book of ``node_part`` into the temp directory; returns ``{file: sha256}``."""
    book = PartitionBook.from_assignment(node_part, num_parts)
    return {BOOK_FILE: _write_tensors(tmp / BOOK_FILE, {"node_part": book.node_part, "local_id": book.local_id})}


def write_part(tmp: Path, part: Part, streamed: Mapping[str, RowBlocks] | None = None) -> dict[str, str]:
    """Writes one part's files into its (existing) folder of the temp directory; returns ``{relative path: sha256}``.

    ``streamed``: tensor fields the part leaves None, written block by block (the chunked pipeline's feature rows).
    """
    folder = part_folder(part.part_id)
    files = {f"{folder}/{PART_TENSORS}": _write_tensors(tmp / folder / PART_TENSORS, {**part.tensors(), **(streamed or {})})}
    info = {key: getattr(part, key) for key in PART_INFO_KEYS}
    files[f"{folder}/{PART_INFO}"] = write_synced(tmp / folder / PART_INFO, json.dumps(info).encode())
    fsync_dir(tmp / folder)
    return files


def install_partition(tmp: Path, directory: Path, meta: PartitionMeta, force: bool) -> None:
    """Writes ``meta.json`` into the finished temp directory and installs it at ``directory`` atomically."""
    write_synced(tmp / META_FILE, (json.dumps(meta.to_dict(), indent=2) + "\n").encode())
    fsync_dir(tmp)
    _move_into_place(tmp, directory, force)


def is_partition_directory(directory: Path) -> bool:
    """Whether ``directory`` carries gnndist's marker: a ``meta.json`` object with ``format_version`` and ``gnndist_version``."""
    try:
        values = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and "format_version" in values and "gnndist_version" in values


def check_replaceable(directory: Path, force: bool, *, flag: str = "--force") -> None:
    """Raises unless ``directory`` may be written: absent, or (with ``force``) empty or a gnndist partition directory.

    ``--force`` replaces only what gnndist wrote: a user's folder is never deleted (see :func:`gnndist.io.check_replaceable`).

    Raises:
        FileExistsError: naming ``directory`` and why it is kept.
    """
    check_replaceable_dir(directory, force, kind="Partition directory", ours="a partition directory gnndist wrote", is_ours=is_partition_directory, flag=flag)


def _move_into_place(tmp: Path, directory: Path, force: bool) -> None:
    """Installs the finished temp directory at ``directory``, replacing an old one only with ``force``."""
    if directory.exists():
        check_replaceable(directory, force)  # again: it may have appeared or changed while the parts were written
    install_dir(tmp, directory)


# ---------------------------------------------------------------------- reading
def load_meta(directory: str | os.PathLike) -> PartitionMeta:
    """Reads and validates ``DIR/meta.json``.

    Raises:
        FileNotFoundError: the directory or its ``meta.json`` is missing.
        ValueError: ``meta.json`` is not valid JSON, lacks keys, or has a newer format version.
    """
    directory = Path(directory)
    return PartitionMeta.from_dict(read_meta_json(directory, META_FILE, kind="Partition directory"), directory / META_FILE)


def _listed_path(directory: Path, relative: str, meta: PartitionMeta) -> Path:
    """``directory / relative``, which ``meta.json`` must list and which must exist."""
    if relative not in meta.files:
        raise ValueError(f"{directory / META_FILE} lists no checksum for {relative}")
    path = directory / relative
    if not path.is_file():
        raise FileNotFoundError(f"Partition file {path} is missing")
    return path


def _check_digest(path: Path, relative: str, meta: PartitionMeta, digest: str) -> None:
    if digest != meta.files[relative]:
        raise ValueError(f"Checksum mismatch for {path}: expected sha256 {meta.files[relative]}, got {digest} (the file is corrupted or was modified)")


def _load_tensors(directory: Path, relative: str, meta: PartitionMeta, verify: bool) -> dict[str, torch.Tensor]:
    """The tensors of a listed safetensors file, checked against its sha256 in blocks and read tensor by tensor
    with ``safe_open``: no in-memory copy of the whole file, so loading a part peaks at ~1x its size, not 2x."""
    path = _listed_path(directory, relative, meta)
    if verify:
        _check_digest(path, relative, meta, sha256_file(path))
    try:
        with safe_open(path, framework="pt") as file:
            return {name: file.get_tensor(name) for name in file.keys()}
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from error


def _require(present: Collection[str], names: tuple[str, ...], path: Path) -> None:
    """Refuses a file whose tensor names ``present`` lack one of ``names``."""
    missing = [name for name in names if name not in present]
    if missing:
        raise ValueError(f"{path} lacks tensor(s) {missing}")


def load_book(directory: str | os.PathLike, *, verify: bool = True) -> PartitionBook:
    """Loads the partition book: its two ``[num_nodes]`` int64 arrays and nothing more.

    Every mini-batch worker holds it; it is read like a part (:func:`_load_tensors`, no copy of the file).
    """
    directory = Path(directory)
    meta = load_meta(directory)
    tensors = _load_tensors(directory, BOOK_FILE, meta, verify)
    _require(tensors, ("node_part", "local_id"), directory / BOOK_FILE)
    return PartitionBook(tensors["node_part"], tensors["local_id"], meta.num_parts)


def load_part(directory: str | os.PathLike, part_id: int, *, verify: bool = True) -> Part:
    """Loads only part ``part_id`` (its own files: memory ~ its owned rows plus halo).

    Args:
        directory: a partition directory written by :func:`save_partition`.
        part_id: which part, in ``[0, num_parts)``.
        verify: check the files' sha256 against ``meta.json``.

    Raises:
        FileNotFoundError: the directory, ``meta.json`` or a part file is missing (named).
        ValueError: out-of-range ``part_id``, checksum mismatch or malformed file (named).
    """
    directory = Path(directory)
    meta = load_meta(directory)
    if isinstance(part_id, bool) or not isinstance(part_id, int) or not 0 <= part_id < meta.num_parts:
        raise ValueError(f"Expected part_id in [0, {meta.num_parts - 1}] (got {part_id!r})")
    folder = part_folder(part_id)
    info_path = directory / folder / PART_INFO
    try:
        path = _listed_path(directory, f"{folder}/{PART_INFO}", meta)
        if verify:
            _check_digest(path, f"{folder}/{PART_INFO}", meta, sha256_file(path))
        info = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{info_path} is not valid JSON: {error}") from error
    missing = [key for key in PART_INFO_KEYS if key not in info]
    if missing:
        raise ValueError(f"{info_path} lacks key(s) {missing}")
    tensors_path = directory / folder / PART_TENSORS
    tensors = _load_tensors(directory, f"{folder}/{PART_TENSORS}", meta, verify)
    _require(tensors, TENSOR_FIELDS, tensors_path)
    unknown = sorted(set(tensors) - set(TENSOR_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(f"{tensors_path} has unknown tensor(s) {unknown}")
    part = Part(**{key: info[key] for key in PART_INFO_KEYS}, **tensors)
    expected_local = part.num_owned + sum(part.num_halo_per_hop)
    if part.global_ids.numel() != expected_local or part.indptr.numel() != expected_local + 1:
        raise ValueError(f"{tensors_path}: {part.global_ids.numel()} local nodes and indptr of {part.indptr.numel()} do not match {info_path} ({expected_local} local nodes)")
    for name, expected in (("node_type", part.num_local), ("edge_type", part.num_edges)):
        value = getattr(part, name)
        if value is not None and (meta.types is None or value.shape != (expected,)):
            raise ValueError(f"{tensors_path}: '{name}' of shape {list(value.shape)} needs {META_FILE} 'types' and one entry per local {'row' if name == 'node_type' else 'edge'} ({expected})")
    return part
