"""Run a C partitioner in a child forked from this process, so that no other thread can change its result.

The METIS that pymetis ships draws its random numbers from the C library's ``rand()``, whose state is
shared by the whole process: any other thread calling ``rand()`` meanwhile shifts METIS's sequence, and
with it the partition. In a Ray worker (gRPC and Ray's own threads) that happened in one call of four on a
2M-node cluster graph; a thread calling ``rand()`` in a loop changes every result. A forked child has only
the calling thread, and sees the parent's arrays without a copy (copy-on-write).

The child writes its result into memory shared with the parent (:func:`shared_empty`) and exits; its peak
resident memory, which counts the parent's pages it shares, is recorded as this process's
(:func:`gnndist.memory.record_child_peak`). Where ``os.fork`` does not exist the call runs in this process.
"""
from __future__ import annotations

import mmap
import os
import signal
import warnings
from typing import Callable

import numpy as np

from gnndist.memory import record_child_peak

_MESSAGE_BYTES = 4096  # room for the child's error message


def shared_empty(size: int, dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised ``[size]`` array in an anonymous shared mapping: what a forked child writes there, the parent reads."""
    dtype = np.dtype(dtype)
    return np.frombuffer(mmap.mmap(-1, max(size * dtype.itemsize, 1)), dtype=dtype, count=size)


def call_forked(function: Callable[[], int]) -> int:
    """``function()`` (returning an int, e.g. a C status) in a forked child; its return value, or its exception re-raised here as a RuntimeError.

    ``function`` must write its results into :func:`shared_empty` arrays made before the call. A
    KeyboardInterrupt while waiting kills the child and is re-raised.
    """
    if not hasattr(os, "fork"):
        return function()
    result = shared_empty(1, np.int64)
    message = shared_empty(_MESSAGE_BYTES, np.uint8)
    with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads: the child runs no thread of ours
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: no return, no Python exception escapes
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: stop with the parent
            result[0] = function()
            code = 0
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            text = f"{type(error).__name__}: {error}".encode()[:_MESSAGE_BYTES - 1]
            message[:len(text)] = np.frombuffer(text, np.uint8)
            message[len(text)] = 0
        finally:
            os._exit(code)
    try:
        _, status, usage = os.wait4(pid, 0)  # usage: the child's own, counted by the kernel up to its exit
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    record_child_peak(usage.ru_maxrss * 1024)  # KiB on Linux
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return int(result[0])
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1:
        raise RuntimeError(bytes(message).split(b"\0", 1)[0].decode(errors="replace"))
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
    raise RuntimeError(f"The forked partitioner process ended by {how} (out of memory?)")
