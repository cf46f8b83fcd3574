"""Dataset registry: ``load_dataset("sbm", num_nodes=...)``, ``load_dataset("planetoid:cora", root=...)``."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from gnndist.graph import Graph
from gnndist.registry import DATASETS

register_dataset = DATASETS.register


def available_datasets() -> list[str]:
    return DATASETS.available()


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"planetoid:cora"`` -> ``("planetoid", "cora")``; ``"sbm"`` -> ``("sbm", None)``."""
    name, sep, arg = spec.partition(":")
    if sep and not arg:
        raise ValueError(f"Dataset spec {spec!r} has an empty argument after ':'")
    return name, (arg if sep else None)


def dataset_loader(spec: str) -> tuple[Callable[..., Graph], tuple]:
    """The loader for ``spec`` and the positional arguments its ``:`` part supplies."""
    name, arg = split_spec(spec)
    loader = DATASETS.get(name)
    return loader, (() if arg is None else (arg,))


def check_dataset_options(spec: str, options: dict[str, Any]) -> None:
    """Fails early, naming the option, when ``options`` are not parameters of ``spec``'s loader."""
    name, arg = split_spec(spec)
    DATASETS.check_options(name, options, skip=0 if arg is None else 1, label=spec)


def load_dataset(spec: str, **options: Any) -> Graph:
    """Loads or generates the dataset ``spec`` (``name`` or ``name:arg``) as a validated Graph."""
    check_dataset_options(spec, options)
    loader, args = dataset_loader(spec)
    return loader(*args, **options)


def random_split_masks(num_nodes: int, train: float, val: float, test: float | None, generator: torch.Generator) -> dict[str, Tensor]:
    """Disjoint random train/val/test masks with the given fractions (test: the rest when None)."""
    for name, value in (("train", train), ("val", val), ("test", test if test is not None else 0.0)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"Expected split fraction '{name}' in [0, 1] (got {value})")
    test = 1.0 - train - val if test is None else test
    if train + val + test > 1.0 + 1e-9:
        raise ValueError(f"Split fractions add up to more than 1 (train={train}, val={val}, test={test})")
    perm = torch.randperm(num_nodes, generator=generator)
    bounds = [0, round(train * num_nodes), round((train + val) * num_nodes), round(min(train + val + test, 1.0) * num_nodes)]
    masks = {}
    for name, lo, hi in zip(("train_mask", "val_mask", "test_mask"), bounds[:-1], bounds[1:]):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[perm[lo:hi]] = True
        masks[name] = mask
    return masks
