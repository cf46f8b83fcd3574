"""Capability flags, each detected once on first use: ``from gnndist.typing import WITH_DGL``."""
from __future__ import annotations

import functools
import importlib
from typing import Any


@functools.cache
def dgl_status() -> tuple[bool, str]:
    """Whether DGL imports and runs with this torch, and why not."""
    try:
        import dgl  # noqa: F401
        import torch

        graph = dgl.graph((torch.tensor([0]), torch.tensor([1])))
        graph.in_degrees()
        return True, f"dgl {dgl.__version__}"
    except Exception as error:  # DGL's wheels break in many ways against a mismatched torch
        return False, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


@functools.cache
def module_status(name: str) -> tuple[bool, str]:
    """Whether module ``name`` imports, with its version or the error."""
    try:
        module = importlib.import_module(name)
        return True, str(getattr(module, "__version__", "available"))
    except Exception as error:
        return False, f"{type(error).__name__}: {error}"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


_FLAGS = {
    "WITH_DGL": lambda: dgl_status()[0],
    "WITH_METIS": lambda: module_status("pymetis")[0],
    "WITH_KAHIP": lambda: module_status("kahip")[0],
    "WITH_KAMINPAR": lambda: module_status("kaminpar")[0],
    "WITH_OGB": lambda: module_status("ogb")[0],
    "WITH_TORCH_SPARSE": lambda: module_status("torch_sparse")[0],
    "WITH_PYG_LIB": lambda: module_status("pyg_lib")[0],
    "WITH_CUDA": _cuda,
}
_cache: dict[str, bool] = {}


def __getattr__(name: str) -> Any:
    if name not in _FLAGS:
        raise AttributeError(f"module 'gnndist.typing' has no attribute {name!r}")
    if name not in _cache:
        _cache[name] = bool(_FLAGS[name]())
    return _cache[name]
