"""Compile the streaming partitioners' per-node loops with numba (a dependency of gnndist).

numba is imported when a kernel first runs, not when ``gnndist.partitioners`` is imported: the import
alone takes about 0.3 s, which every command that never streams a partition would pay.
"""
from __future__ import annotations

import functools
from typing import Any, Callable


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``numba.njit(cache=True, nogil=True)`` applied on the first call."""
    kernel: list[Callable[..., Any]] = []

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        if not kernel:
            import numba

            kernel.append(numba.njit(cache=True, nogil=True)(function))
        return kernel[0](*args)

    return call
