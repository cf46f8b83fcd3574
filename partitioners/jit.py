"""Compile the streaming partitioners' per-node loops with numba (a dependency of gnndist).

numba is imported when a kernel first runs, not when ``gnndist.partitioners`` is imported: the import
alone takes about 0.3 s, which every command that never streams a partition would pay.
"""
from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Callable

_lock = threading.Lock()  # threads may run their first kernels at once
_kernels: list[list[Callable[..., Any]]] = []  # every kernel's slot, emptied when numba is imported again


def _drop_numba() -> None:
    """Forgets numba (its modules and every kernel compiled with it), so that the next kernel imports it afresh.

    A Ray task cancelled with a ``KeyboardInterrupt`` (``TaskGroup.cancel``) can break off numba's import, or
    the imports numba makes while it compiles or loads a kernel, halfway, and its worker process is reused: the
    next task then fails with an ``AttributeError`` ("partially initialized module 'numba'", "module
    'numba.core.types' has no attribute 'misc'").
    """
    for name in [name for name in sys.modules if name == "numba" or name.startswith("numba.")]:
        del sys.modules[name]
    for slot in _kernels:
        slot.clear()


def _run(kernel: list[Callable[..., Any]], function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if not kernel:
        with _lock:
            if not kernel:
                import numba

                kernel.append(numba.njit(cache=True, nogil=True)(function))
    return kernel[0](*args)


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``numba.njit(cache=True, nogil=True)`` applied on the first call; a numba left half-imported
    in this process (see :func:`_drop_numba`) is imported again, once."""
    kernel: list[Callable[..., Any]] = []
    _kernels.append(kernel)

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return _run(kernel, function, args)
        except (AttributeError, ImportError):  # compiled kernels raise neither: numba's own modules are broken
            with _lock:
                _drop_numba()
            return _run(kernel, function, args)

    return call
