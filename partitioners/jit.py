"""Compile the streaming partitioners' per-node loops with numba (a dependency of gnndist).

numba is imported when a kernel first runs, not when ``gnndist.partitioners`` is imported: the import
alone takes about 0.3 s, which every command that never streams a partition would pay.
"""
from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Callable

_import_lock = threading.Lock()


def _numba() -> Any:
    """numba, imported under a lock (threads may run their first kernels at once).

    A Ray task cancelled with a ``KeyboardInterrupt`` (``TaskGroup.cancel``) can break numba's import off
    halfway, and its worker process is reused: the next task's ``import numba`` then fails with "partially
    initialized module 'numba'". Such a half-imported numba is dropped from ``sys.modules`` and imported again.
    """
    with _import_lock:
        try:
            import numba

            if not hasattr(numba, "njit"):
                raise ImportError("numba is half-imported")
            return numba
        except (ImportError, AttributeError):
            for name in [name for name in sys.modules if name == "numba" or name.startswith("numba.")]:
                del sys.modules[name]
            import numba

            return numba


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``numba.njit(cache=True, nogil=True)`` applied on the first call."""
    kernel: list[Callable[..., Any]] = []

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        if not kernel:
            kernel.append(_numba().njit(cache=True, nogil=True)(function))
        return kernel[0](*args)

    return call
