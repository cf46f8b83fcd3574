"""Datasets by name, every loader offline: ``load_dataset("planetoid:cora", root=...)``."""
from gnndist.data.npz import save_npz
from gnndist.data.registry import DATASETS, available_datasets, check_dataset_options, load_dataset, register_dataset

__all__ = ["DATASETS", "available_datasets", "check_dataset_options", "load_dataset", "register_dataset", "save_npz"]
