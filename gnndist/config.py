"""The job config: one pydantic tree, loaded from YAML, overridable as ``section.key=value``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetConfig(Section):
    """Which graph to train on. Further keys are the loader's options (checked against its signature)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str = Field("sbm", description="Dataset spec: sbm, rmat, planetoid:cora, ogb:ogbn-arxiv, npz:PATH")
    root: str | None = Field(None, description="Folder with the dataset's files (planetoid, ogb, npz)")

    @model_validator(mode="after")
    def _check_options(self) -> "DatasetConfig":
        from gnndist.data import check_dataset_options

        check_dataset_options(self.name, self.options())
        return self

    def options(self) -> dict[str, Any]:
        """Loader keyword arguments: ``root`` (when set) and every extra key."""
        options = dict(self.model_extra or {})
        if self.root is not None:
            options["root"] = self.root
        return options


class ModelConfig(Section):
    name: str = Field("sage", description="Model name: gcn, sage, gat")
    hidden: int = Field(64, ge=1, description="Hidden width")
    layers: int = Field(2, ge=1, description="Message-passing layers")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout on each layer's input")
    heads: int = Field(4, ge=1, description="Attention heads (gat only)")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from gnndist.train.models import available_models

        if name not in available_models():
            raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
        return name

    def options(self) -> dict[str, Any]:
        """Model-specific constructor options."""
        return {"heads": self.heads} if self.name == "gat" else {}


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    seed: int = 0
    batch_size: int = Field(1024, ge=1, description="Seeds per mini-batch (minibatch mode)")
    fanouts: list[int] = Field(default_factory=lambda: [10, 5], description="Neighbours per hop, hop order (-1 = all)")
    eval_every: int = Field(1, ge=1, description="Evaluate every N epochs (and at the last)")
    prefetch: int = Field(2, ge=0, description="Mini-batches sampled and fetched ahead by a background thread (0 = none)")
    num_threads: int | None = Field(None, ge=1, description="torch threads per process (default: the CPUs it was given)")

    @field_validator("fanouts")
    @classmethod
    def _fanouts(cls, fanouts: list[int]) -> list[int]:
        if not fanouts:
            raise ValueError("fanouts must name at least one hop")
        bad = [f for f in fanouts if f == 0 or f < -1]
        if bad:
            raise ValueError(f"fanouts must be positive or -1 (all neighbours), got {fanouts}")
        return fanouts


class PartitionConfig(Section):
    method: str = Field("metis", description="Partitioner name (gnndist partition --help lists them)")
    parts: int = Field(2, ge=1)
    halo_hops: int = Field(1, ge=1)
    dir: str | None = Field(None, description="Partition directory (default: a cache folder keyed by graph and method)")
    options: dict[str, Any] = Field(default_factory=dict, description="Partitioner options")
    transport: Literal["auto", "directory", "object_store"] = Field(
        "auto", description="How workers get their part: from partition.dir (a shared filesystem), or through the Ray object store; auto = object store when the cluster has more than one node"
    )


class CommConfig(Section):
    strategy: str = Field("sync", description="Halo communication strategy (full-graph)")
    options: dict[str, Any] = Field(default_factory=dict, description="Strategy options (p, bits, threshold, ...)")


class CacheConfig(Section):
    policy: str = Field("none", description="Remote feature cache (mini-batch): none, degree, presample, lru")
    capacity: float = Field(0.2, ge=0, description="Fraction of remote nodes (<= 1) or bytes (> 1); bytes beyond the remote set are clamped with a warning")
    options: dict[str, Any] = Field(default_factory=dict, description="Policy options (presample: epochs)")

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, policy: str) -> str:
        from gnndist.cache import available_caches

        if policy not in available_caches():
            raise ValueError(f"unknown cache policy {policy!r}; available: {', '.join(available_caches())}")
        return policy


class ClusterConfig(Section):
    address: str | None = Field(None, description="Ray address (host:port or ray://...); None = embedded local Ray")
    workers: int | None = Field(None, ge=1, description="Workers (default: partition.parts)")
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    timeout_s: float = Field(60.0, gt=0, description="Bound on waiting for resources, on collectives and on one epoch (a worker silent longer is hung)")
    runtime_env: dict[str, Any] | None = Field(None, description="Ray runtime_env for an existing cluster, e.g. {pip: [/path/gnndist.whl]} (not needed with ray job submit --runtime-env or a cluster image)")


class CheckpointConfig(Section):
    dir: str | None = Field(None, description="Checkpoint folder (default: <output.dir>/checkpoints)")
    every: int = Field(0, ge=0, description="Checkpoint every N epochs (0 = only at the end)")
    max_failures: int = Field(3, ge=0, description="Worker failures to recover from before giving up")
    keep: int = Field(3, ge=1, description="Checkpoints kept (the newest); an older one is the fallback when the newest is damaged")


class OutputConfig(Section):
    dir: str | None = Field(None, description="Run directory (default: runs/<timestamp>)")
    tensorboard: bool = Field(False, description="Also write per-epoch metrics as TensorBoard events to <output.dir>/tensorboard")


class JobConfig(Section):
    """A whole training job: the sections of a job YAML (README, 'Training jobs')."""

    mode: Literal["single", "fullgraph", "minibatch"] = Field("fullgraph", description="single: one process (the reference); fullgraph/minibatch: one Ray worker per part")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    partition: PartitionConfig = Field(default_factory=PartitionConfig)
    comm: CommConfig = Field(default_factory=CommConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    aggregation: str = Field("auto", description="Aggregation backend name, or auto: the fastest measured backend that runs the graph at hand (gnndist bench aggregation --save-selection)")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> "JobConfig":
        workers = self.cluster.workers
        if self.mode != "single" and workers is not None and workers != self.partition.parts:
            raise ValueError(f"cluster.workers={workers} but partition.parts={self.partition.parts}: gnndist runs one worker per part")
        if self.mode == "minibatch" and len(self.train.fanouts) != self.model.layers:
            raise ValueError(f"train.fanouts has {len(self.train.fanouts)} hops but model.layers={self.model.layers}: give one fanout per layer")
        from gnndist.aggregation import available_aggregations

        if self.aggregation != "auto" and self.aggregation not in available_aggregations():
            raise ValueError(f"unknown aggregation {self.aggregation!r}; available: auto, {', '.join(available_aggregations())}")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


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


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> JobConfig:
    """Builds a JobConfig from an optional YAML file plus ``key.sub=value`` overrides."""
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
    apply_overrides(data, list(overrides or []))
    try:
        return JobConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, source)) from None
    except (KeyError, ValueError, TypeError) as error:  # raised by validators that consult registries
        raise ConfigError(f"Invalid config {source}: {error}") from None
