"""Compile the streaming partitioners' per-node loops with numba when it is installed.

Without numba the same functions run as plain Python: correct, but too slow for large graphs
(a warning says so once).
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

from gnndist.typing import module_status


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``numba.njit(cache=True)`` on first call, or the plain function without numba."""
    kernel: list[Callable[..., Any]] = []

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        if not kernel:
            available, reason = module_status("numba")
            if available:
                import numba

                kernel.append(numba.njit(cache=True, nogil=True)(function))
            else:
                warnings.warn(f"numba is not installed ({reason}): {function.__name__} runs as plain Python and is slow on large graphs; pip install numba", RuntimeWarning, stacklevel=2)
                kernel.append(function)
        return kernel[0](*args)

    return call
