"""The job config: one pydantic tree, loaded from YAML, overridable as ``section.key=value``, validated once.

Every name that selects a pluggable part (``mode``, ``task.name``, ``task.decoder``, ``task.negative_sampler``, ``model.name``, ``dataset.name``, ``partition.method``,
``comm.strategy``, ``cache.policy``, ``aggregation.name``) is checked against its registry in
:mod:`gnndist.registry` when the config is built, and every options mapping against the parameters of
the part it configures, so a bad job fails before anything starts. This module imports no torch: the
registries list their built-ins by name; only checking a part's options imports that part.

Two kinds of field metadata drive the rest of gnndist: ``identity=False`` marks settings that do not
change the trained parameters (a checkpoint may be resumed with different ones; see :func:`identity`),
and ``path=True`` marks file-system paths (relative ones in a YAML file are resolved against its folder).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gnndist.registry import AGGREGATIONS, CACHES, DECODERS, MODELS, MODES, NEGATIVE_SAMPLERS, PARTITIONERS, STRATEGIES, TASKS, Registry, accepted_options

NOT_IDENTITY = {"identity": False}
PATH = {"path": True}
NOT_IDENTITY_PATH = {"identity": False, "path": True}


def _known(registry: Registry, name: str) -> str:
    if name not in registry:
        raise ValueError(f"unknown {registry.kind} {name!r}; available: {', '.join(registry.available())}")
    return name


def _check_options(registry: Registry, name: str, options: dict[str, Any]) -> None:
    """Builds ``name`` with ``options`` once (an unknown option or a bad value fails here, not in a worker),
    reporting any error as a ValueError so that pydantic names the section's key path."""
    try:
        registry.resolve(name, **options)
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(str(error).strip("'\"")) from None


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated.

    ``identity = False`` on a section class: none of its settings change the trained parameters.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    identity: ClassVar[bool] = True


class DatasetConfig(Section):
    """Which graph to train on. Further keys are the loader's options (checked against its signature)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str = Field("sbm", description="Dataset spec: sbm, rmat, planetoid:cora, ogb:ogbn-arxiv, npz:PATH")
    root: str | None = Field(None, description="Folder with the dataset's files (planetoid, ogb, npz)", json_schema_extra=NOT_IDENTITY_PATH)

    @model_validator(mode="after")
    def _check_options(self) -> "DatasetConfig":
        from gnndist.data.registry import check_dataset_options

        try:
            check_dataset_options(self.name, self.options())
        except KeyError as error:
            raise ValueError(str(error).strip("'\"")) from None
        return self

    def options(self) -> dict[str, Any]:
        """Loader keyword arguments: ``root`` (when set) and every extra key."""
        options = dict(self.model_extra or {})
        if self.root is not None:
            options["root"] = self.root
        return options


class ModelConfig(Section):
    name: str = Field("sage", description="Model name: gcn, sage, gat, gin; on heterogeneous graphs rgcn, hsage, mlp (gnndist.registry.MODELS); or your own PyG model as package.module:Class")
    hidden: int = Field(64, ge=1, description="Hidden width")
    layers: int = Field(2, ge=1, description="Message-passing layers")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout on each layer's input")
    heads: int = Field(4, ge=1, description="Attention heads (gat only)")
    num_bases: int | None = Field(None, ge=1, description="rgcn only: basis decomposition of the relation weights into this many bases (None: a full weight per relation)")
    num_blocks: int | None = Field(None, ge=1, description="rgcn only: block-diagonal decomposition of the relation weights into this many blocks (divides model.hidden and the class count)")

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        """A registered name, or ``package.module:Class`` that imports (the import error is shown when not)."""
        if ":" not in name or name in MODELS:
            return _known(MODELS, name)
        from gnndist.models import model_factory

        try:
            model_factory(name)
        except ImportError as error:
            raise ValueError(str(error)) from None
        return name

    @model_validator(mode="after")
    def _rgcn_options(self) -> "ModelConfig":
        """``num_bases``/``num_blocks`` decompose rgcn's relation weights: one of them, and only for rgcn."""
        given = [name for name in ("num_bases", "num_blocks") if getattr(self, name) is not None]
        if given and self.name != "rgcn":
            raise ValueError(f"model.{given[0]} applies to model.name='rgcn' only (got model.name={self.name!r})")
        if len(given) == 2:
            raise ValueError(f"Give model.num_bases or model.num_blocks, not both (got {self.num_bases} and {self.num_blocks})")
        return self

    def options(self) -> dict[str, Any]:
        """Model-specific constructor options."""
        if self.name == "rgcn":
            return {"num_bases": self.num_bases, "num_blocks": self.num_blocks}
        return {"heads": self.heads} if self.name == "gat" else {}


class TaskConfig(Section):
    """What the run learns. ``name`` selects the task; the other keys are link prediction's (a value other than
    the default is an error with ``node``; a written ``config.yaml`` holds every key at its default)."""

    name: str = Field("node", description="Task: node (classification on the dataset's labels and masks) or link (link prediction)")
    split: list[float] = Field(default_factory=lambda: [0.85, 0.05, 0.10], description="link: train/val/test fractions of the undirected edges (sum <= 1, test > 0); val/test edges leave the message-passing graph")
    negatives: int = Field(1, ge=1, description="link: negative edges per positive edge (training and the fixed evaluation sets)")
    negative_sampler: str = Field("uniform", description="link: how training negatives' destinations are drawn: uniform, degree (degree-biased)")
    decoder: str = Field("dot", description="link: edge scorer on the encoder's rows (width model.hidden): dot, mlp")
    hits_k: int = Field(50, ge=1, description="link: K of Hits@K (OGB's definition)")

    @field_validator("name")
    @classmethod
    def _known_task(cls, name: str) -> str:
        return _known(TASKS, name)

    @field_validator("decoder")
    @classmethod
    def _known_decoder(cls, decoder: str) -> str:
        return _known(DECODERS, decoder)

    @field_validator("negative_sampler")
    @classmethod
    def _known_sampler(cls, sampler: str) -> str:
        return _known(NEGATIVE_SAMPLERS, sampler)

    @field_validator("split")
    @classmethod
    def _split(cls, split: list[float]) -> list[float]:
        from gnndist.tasks.link import check_split

        check_split(split)
        return split

    @model_validator(mode="after")
    def _check_options(self) -> "TaskConfig":
        accepted = accepted_options(TASKS.get(self.name), 0) or []
        fields = type(self).model_fields
        foreign = sorted(key for key in self.model_fields_set - {"name"} if key not in accepted and getattr(self, key) != fields[key].get_default(call_default_factory=True))
        if foreign:
            raise ValueError(f"task.{foreign[0]} does not apply to task.name={self.name!r} (its options: {', '.join(accepted) or 'none'})")
        _check_options(TASKS, self.name, self.options())
        return self

    def options(self) -> dict[str, Any]:
        """The task's constructor options: the keys its factory takes."""
        accepted = accepted_options(TASKS.get(self.name), 0) or []
        return {key: getattr(self, key) for key in accepted if key in type(self).model_fields}


class TrainConfig(Section):
    epochs: int = Field(30, ge=1, json_schema_extra=NOT_IDENTITY)
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    seed: int = 0
    batch_size: int = Field(1024, ge=1, description="Seeds per mini-batch over all workers (minibatch mode)")
    fanouts: list[int] | dict[str, list[int]] = Field(
        default_factory=lambda: [10, 5],
        description="Neighbours per hop, hop order (-1 = all); one per layer (minibatch mode). Heterogeneous graphs: per relation and destination, or a mapping relation name (src__rel__dst) -> list per hop",
    )
    replace: bool = Field(False, description="Sample neighbours with replacement (minibatch mode)")
    eval_every: int = Field(1, ge=1, description="Evaluate every N epochs (and at the last)", json_schema_extra=NOT_IDENTITY)
    prefetch: int = Field(2, ge=0, description="Mini-batches sampled and fetched ahead by a background thread (0 = none)", json_schema_extra=NOT_IDENTITY)
    prefetch_nice: int = Field(
        19, ge=0, le=19, description="How much lower the prefetch thread's CPU priority is than training's (Linux nice, 0-19; 0 = the same): training steps get shared cores first", json_schema_extra=NOT_IDENTITY
    )
    num_threads: int | None = Field(None, ge=1, description="torch threads per process (default: the CPUs it was given)", json_schema_extra=NOT_IDENTITY)
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Device of mode=single and mode=local (auto: CUDA when available); Ray workers use their GPU when cluster.gpus_per_worker > 0", json_schema_extra=NOT_IDENTITY
    )

    @field_validator("fanouts")
    @classmethod
    def _fanouts(cls, fanouts: list[int] | dict[str, list[int]]) -> list[int] | dict[str, list[int]]:
        for hops in fanouts.values() if isinstance(fanouts, dict) else [fanouts]:
            if not hops:
                raise ValueError(f"fanouts must name at least one hop (one fanout per layer) (got {fanouts})")
            if any(f == 0 or f < -1 for f in hops):
                raise ValueError(f"fanouts must be positive or -1 (all neighbours): expected every fanout >= 1, or -1 (got {fanouts})")
        if isinstance(fanouts, dict) and len({len(hops) for hops in fanouts.values()}) > 1:
            raise ValueError(f"fanouts per relation must all have one fanout per layer: got lists of unequal length {fanouts}")
        return fanouts

    @property
    def hops(self) -> int:
        """Sampling hops ``fanouts`` gives (a mapping per relation: the length of its lists)."""
        return len(next(iter(self.fanouts.values()), [])) if isinstance(self.fanouts, dict) else len(self.fanouts)


class PartitionConfig(Section):
    method: str = Field("metis", description="Partitioner name (gnndist partition --list)")
    parts: int = Field(2, ge=1)
    halo_hops: int = Field(1, ge=1)
    dir: str | None = Field(None, description="Partition directory (default: a cache folder keyed by graph and method)", json_schema_extra=NOT_IDENTITY_PATH)
    options: dict[str, Any] = Field(default_factory=dict, description="Partitioner options")
    transport: Literal["auto", "directory", "object_store"] = Field(
        "auto",
        description=(
            "How workers get their part: from partition.dir (a shared filesystem), or through the Ray object store (read by an actor on the driver's node, never by the driver); "
            "auto = object store when the cluster has more than one node (workers on the driver's node read partition.dir), unless Ray tasks wrote the partition (a chunked graph: "
            "partition.dir is then on a shared filesystem)"
        ),
        json_schema_extra=NOT_IDENTITY,
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        return _known(PARTITIONERS, method)

    @model_validator(mode="after")
    def _check_options(self) -> "PartitionConfig":
        _check_options(PARTITIONERS, self.method, self.options)
        return self


class CommConfig(Section):
    strategy: str = Field("sync", description="Halo communication strategy (full-graph): sync, stale, sampled, quantized, cached")
    options: dict[str, Any] = Field(default_factory=dict, description="Strategy options (p, bits, threshold, ...)")

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, strategy: str) -> str:
        return _known(STRATEGIES, strategy)

    @model_validator(mode="after")
    def _check_options(self) -> "CommConfig":
        _check_options(STRATEGIES, self.strategy, self.options)
        return self


class SamplingConfig(Section):
    identity: ClassVar[bool] = False  # where sampling runs changes speed; the samples come from the same seeds
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where a mini-batch worker samples: auto = its GPU when it has one and its local graph fits in a quarter of the GPU's memory, else the CPU"
    )


class CacheConfig(Section):
    identity: ClassVar[bool] = False  # which rows are cached changes speed, never values
    policy: str = Field("none", description="Remote feature cache (mini-batch): none, degree, presample, lru")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where a GPU worker keeps its cached remote rows and its own feature table: auto = its GPU when they fit in a quarter of its memory"
    )
    capacity: float = Field(0.2, ge=0, allow_inf_nan=False, description="Fraction of remote nodes (<= 1) or bytes (> 1); bytes beyond the remote set are clamped with a warning")
    options: dict[str, Any] = Field(default_factory=dict, description="Policy options (presample: epochs)")
    shared_memory: bool = Field(
        True,
        description="Mini-batch workers read the remote rows of stores on their own node in place, from Ray's shared-memory object store (one copy per node; no request, no store CPU); a worker's RSS then counts the shared pages it maps",
    )
    shared_memory_mb: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description=(
            "MiB of those shared pages a worker keeps mapped between reads (null: all): beyond, it unmaps them, so its RSS counts its own memory, "
            "not the node's one copy; the rows stay in the object store and a later read maps them again (page faults: 64 cost 1.4x the epoch on a 2M-node sbm)"
        ),
    )

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, policy: str) -> str:
        return _known(CACHES, policy)

    @model_validator(mode="after")
    def _check_options(self) -> "CacheConfig":
        _check_options(CACHES, self.policy, {"capacity": self.capacity, **self.options})
        return self


class AggregationConfig(Section):
    """Which aggregation kernel every layer uses. A plain string (``aggregation=csr_spmm``) sets ``name``."""

    name: str = Field("auto", description="Aggregation backend, or auto: the best backend for each block by the built-in ranking (or by `selection`)")
    selection: str | None = Field(
        None, description="A selection table measured by `gnndist bench aggregation --save-selection FILE`; used by auto only when given here", json_schema_extra=NOT_IDENTITY_PATH
    )

    @field_validator("name")
    @classmethod
    def _known_aggregation(cls, name: str) -> str:
        return _known(AGGREGATIONS, name)


class ClusterConfig(Section):
    identity: ClassVar[bool] = False
    address: str | None = Field(None, description="Ray address (host:port or ray://...); None = embedded local Ray")
    workers: int | None = Field(None, ge=1, description="Workers (default: partition.parts)")
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0, description="GPUs per worker; > 0 trains on CUDA (fractions share a GPU between workers)")
    comm_backend: Literal["auto", "nccl", "gloo"] = Field("auto", description="torch.distributed backend: auto = NCCL when every worker has a whole GPU, else gloo")
    timeout_s: float = Field(60.0, gt=0, description="Bound on waiting for resources, on collectives and on one epoch (a worker silent longer is hung)")
    release_memory: bool = Field(
        False,
        description=(
            "Workers hand freed allocations of 1 MiB or more back to the OS (glibc settings): a lower peak RSS (-13 % on a full-graph worker) "
            "for ~1.5x CPU per step (page faults); for runs bound by memory. False: one heap keeps them (gnndist.memory.worker_malloc_env)"
        ),
    )
    runtime_env: dict[str, Any] | None = Field(None, description="Ray runtime_env for an existing cluster, e.g. {pip: [/path/gnndist.whl]} (not needed with ray job submit --runtime-env or a cluster image)")

    @model_validator(mode="after")
    def _backend_fits_the_devices(self) -> "ClusterConfig":
        from gnndist.device import comm_backend

        comm_backend(self.comm_backend, self.gpus_per_worker)
        return self


class CheckpointConfig(Section):
    identity: ClassVar[bool] = False
    dir: str | None = Field(None, description="Checkpoint folder (default: <output.dir>/checkpoints)", json_schema_extra=PATH)
    every: int = Field(0, ge=0, description="Checkpoint every N epochs (0 = only at the end)")
    max_failures: int = Field(3, ge=0, description="Worker failures to recover from before giving up")
    keep: int = Field(3, ge=1, description="Checkpoints kept (the newest); an older one is the fallback when the newest is damaged")


class OutputConfig(Section):
    identity: ClassVar[bool] = False
    dir: str | None = Field(None, description="Run directory (default: runs/<timestamp>)", json_schema_extra=PATH)
    tensorboard: bool = Field(False, description="Also write per-epoch metrics as TensorBoard events to <output.dir>/tensorboard")


class PlanConfig(Section):
    """The planner's prediction recorded in a run's summary (``gnndist plan``)."""

    identity: ClassVar[bool] = False
    calibration: str | None = Field(
        None, description="A calibration file written by `gnndist plan --calibration FILE`; a run then records its predicted epoch time, bytes and memory (summary.json key plan)", json_schema_extra=PATH
    )


class JobConfig(Section):
    """A whole training job (see docs/architecture.md, 'Job config and run directory')."""

    mode: str = Field("fullgraph", description="single: one process (the reference); local: every part in one process; fullgraph/minibatch: one Ray worker per part")
    task: TaskConfig = Field(default_factory=TaskConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    partition: PartitionConfig = Field(default_factory=PartitionConfig)
    comm: CommConfig = Field(default_factory=CommConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """``aggregation: NAME`` sets ``aggregation.name``; ``comm.strategy: local`` is the old spelling of ``mode: local``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("aggregation"), str):
            data["aggregation"] = {"name": data["aggregation"]}
        comm = data.get("comm")
        if isinstance(comm, dict) and comm.get("strategy") == "local":
            warnings.warn("comm.strategy=local is deprecated: use mode=local (every part in one process)", FutureWarning, stacklevel=2)
            data["comm"] = {**comm, "strategy": "sync"}
            data["mode"] = "local"
        return data

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        return _known(MODES, mode)

    @model_validator(mode="after")
    def _cross_checks(self) -> "JobConfig":
        workers = self.cluster.workers
        if self.mode != "single" and workers is not None and workers != self.partition.parts:
            raise ValueError(f"cluster.workers={workers} but partition.parts={self.partition.parts}: gnndist runs one worker per part")
        if self.mode == "minibatch" and self.train.hops != self.model.layers:
            raise ValueError(f"train.fanouts has {self.train.hops} hops but model.layers={self.model.layers}: give one fanout per layer")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def identity(config: JobConfig) -> dict[str, Any]:
    """The settings that change the trained parameters: every section and field except those marked
    ``identity = False`` (locations, cluster, checkpoint and output settings, epochs, evaluation, threads)."""

    def keep(section: BaseModel) -> dict[str, Any]:
        data = section.model_dump(mode="json")
        for name, info in type(section).model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("identity") is False:
                data.pop(name, None)
            elif isinstance(getattr(section, name), Section):
                value = getattr(section, name)
                if type(value).identity:
                    data[name] = keep(value)
                else:
                    data.pop(name)
        return data

    return keep(config)


class ConfigError(ValueError):
    """A config that cannot be built; the message names the key path and the problem."""


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{path}: {message}" + (f" (got {item['input']!r})" if item["type"] != "extra_forbidden" and not isinstance(item.get("input"), dict) else ""))
    return f"Invalid config {source}: " + "; ".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.fanouts=[10,5]"`` -> ``(["train", "fanouts"], [10, 5])``; values are parsed as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"Override {text!r} is not of the form section.key=value")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Sets each ``a.b.c=value`` in the nested dict ``data`` (created as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def _resolve_paths(data: dict[str, Any], base: Path, model: type[BaseModel] = JobConfig) -> None:
    """Makes the relative paths a YAML file gives (fields marked ``path=True``, and the PATH of
    ``dataset.name: npz:PATH``) relative to the file's folder instead of the working directory."""
    for name, info in model.model_fields.items():
        if name not in data:
            continue
        value, extra = data[name], info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("path") and isinstance(value, str) and not Path(value).expanduser().is_absolute():
            data[name] = str(base / value)
        elif isinstance(value, dict) and isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            _resolve_paths(value, base, info.annotation)
    dataset = data.get("dataset") if model is JobConfig else None
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        kind, sep, target = dataset["name"].partition(":")
        if sep and kind in PATH_DATASETS and not Path(target).expanduser().is_absolute():
            dataset["name"] = f"{kind}:{base / target}"


PATH_DATASETS = ("npz",)  # dataset kinds whose ``name:ARG`` argument is a path


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> JobConfig:
    """Builds a JobConfig from an optional YAML file plus ``key.sub=value`` overrides.

    Relative paths in the file are relative to the file's folder; relative paths in overrides are
    relative to the working directory (where the command was typed).
    """
    data: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"Config file {path} is not valid YAML: {error}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"Config file {path} must hold a mapping of sections (got {type(data).__name__})")
        if isinstance(data.get("aggregation"), str):
            data["aggregation"] = {"name": data["aggregation"]}
        _resolve_paths(data, path.resolve().parent)
    apply_overrides(data, list(overrides or []))
    try:
        return JobConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, source)) from None
    except (KeyError, ValueError, TypeError) as error:  # raised by validators that consult registries
        raise ConfigError(f"Invalid config {source}: {error}") from None
