"""Waiting on labelled Ray tasks: the first failure names its task, the rest are cancelled, peaks are recorded.

Used by the chunked partition pipeline, whose tasks each own one chunk, node range or part: an error
must say which (``"edge chunk edges-00003: ..."``), including a task that ran out of memory or whose worker
died, which Ray reports without the task's arguments. A Ray task here returns a dict with ``peak_bytes``
(see :func:`measured`) or a tuple whose first element is such a dict.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, Sequence

from gnndist.memory import peak_resident_bytes, reset_peak_resident

CANCEL_WAIT_S = 30.0  # how long a cancelled group waits for its workers to stop before the caller removes files
CANCEL_GRACE_S = 5.0  # how long an interrupted task may take to stop before its worker is killed


def measured(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a task body: resets the worker's peak RSS first (workers are reused), adds ``peak_bytes`` to its result dict."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        reset_peak_resident()
        result = function(*args, **kwargs)
        info = result[0] if isinstance(result, tuple) else result
        info["peak_bytes"] = peak_resident_bytes()
        return result

    return call


class TaskFailed(RuntimeError):
    """A task failed in a way that is not a Python exception of its own (out of memory, worker or node died, cancelled)."""


def _relabel(cause: BaseException, label: str) -> BaseException:
    """``cause`` again, its message prefixed with ``label`` (a plain RuntimeError when its type takes no message)."""
    message = f"{label}: {cause}"
    try:
        error = type(cause)(message)
    except Exception:  # an exception type whose constructor wants other arguments
        error = RuntimeError(f"{label}: {type(cause).__name__}: {cause}")
    return error


class TaskGroup:
    """Ray tasks submitted with a label each; :meth:`wait` returns results or raises the first failure, named.

    On any failure (or a KeyboardInterrupt while waiting, or from ``on_done``) every unfinished task of the
    group is cancelled and awaited, so the caller can remove the files they write afterwards.
    """

    def __init__(self) -> None:
        self.labels: dict[Any, str] = {}
        self.peak_bytes = 0

    def submit(self, remote: Any, label: str, *args: Any, **options: Any) -> Any:
        """``remote.options(**options).remote(*args)``; the first returned ref is tracked under ``label``."""
        refs = remote.options(**options).remote(*args) if options else remote.remote(*args)
        first = refs[0] if isinstance(refs, list) else refs
        self.labels[first] = label
        return refs

    def wait(self, refs: Sequence[Any], on_done: Callable[[int, int], None] | None = None) -> list[Any]:
        """Results of ``refs`` in order; ``on_done(finished, total)`` after each one finishes."""
        results: list[Any] = [None] * len(refs)
        for index, result in self.as_completed(refs, on_done):
            results[index] = result
        return results

    def as_completed(self, refs: Sequence[Any], on_done: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, Any]]:
        """``(index in refs, result)`` as tasks finish (a reducer then holds one result at a time)."""
        import ray

        position = {ref: index for index, ref in enumerate(refs)}
        pending, finished = list(refs), 0
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                result = self._get(ready[0])
                info = result[0] if isinstance(result, tuple) else result
                if isinstance(info, dict):
                    self.peak_bytes = max(self.peak_bytes, int(info.get("peak_bytes", 0)))
                finished += 1
                if on_done is not None:
                    on_done(finished, len(refs))
                yield position[ready[0]], result
        except BaseException:
            self.cancel()
            raise

    def _get(self, ref: Any) -> Any:
        import ray
        from ray import exceptions

        label = self.labels.get(ref, "a partition task")
        try:
            return ray.get(ref)
        except exceptions.RayTaskError as error:
            cause = error.cause if isinstance(error.cause, BaseException) else RuntimeError(str(error))
            raise _relabel(cause, label) from error
        except (exceptions.OutOfMemoryError, exceptions.WorkerCrashedError) as error:
            raise MemoryError(f"{label} ran out of memory or its worker died ({type(error).__name__}); give it more memory or use smaller chunks / more parts: {error}") from error
        except exceptions.RayError as error:
            raise TaskFailed(f"{label} failed: {type(error).__name__}: {error}") from error

    def cancel(self) -> None:
        """Cancels every unfinished task of the group and waits (bounded) until they have stopped.

        Tasks are interrupted first (``KeyboardInterrupt`` in the task; a queued one is dropped) and only a task
        still running ``CANCEL_GRACE_S`` later has its worker killed: Ray 2.60's driver aborts (a failed internal
        check, "Tried to complete task that was not pending") when a force-killed task's reply races its
        cancellation, which took a whole test session down.
        """
        import ray

        refs = list(self.labels)
        for force, grace in ((False, CANCEL_GRACE_S), (True, CANCEL_WAIT_S)):
            _, running = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
            for ref in running:
                try:
                    ray.cancel(ref, force=force)
                except Exception:  # finished meanwhile, or its owner is gone: nothing to cancel
                    pass
            if running:
                ray.wait(running, num_returns=len(running), timeout=grace, fetch_local=False)
            refs = running
