"""The run directory: resolved config, per-epoch JSON lines and the final summary, owned by one live run.

A run directory carries gnndist's marker (``gnndist-run.json``), so ``--force`` and ``--resume`` act
only on folders gnndist made, and a lock (``gnndist-run.lock``: an OS file lock plus the owner's pid and
host) so two live runs never write into one folder. A run that fails before its first epoch leaves
the folder as it found it (absent or empty).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path

import gnndist
from gnndist.config import JobConfig
from gnndist.io import append_line, atomic_path, write_json
from gnndist.train.metrics import EpochMetrics

MARKER_FILE = "gnndist-run.json"
LOCK_FILE = "gnndist-run.lock"
ERROR_LOG = "error.log"
RESULT_FILES = ("metrics.jsonl", "summary.json", "recoveries.jsonl", "workers.json", ERROR_LOG)  # what --force clears


def is_run_directory(path: Path) -> bool:
    """Whether ``path`` is a run directory gnndist wrote: it has the marker, or (written before the marker
    existed) both ``config.yaml`` and ``metrics.jsonl``."""
    return (path / MARKER_FILE).is_file() or ((path / "config.yaml").is_file() and (path / "metrics.jsonl").is_file())


class RunDirectoryBusy(RuntimeError):
    """Another live run holds the run directory's lock."""


class RunLock:
    """An exclusive lock on a run directory, held by this process until :meth:`release`.

    ``fcntl.flock`` rather than a lock library: the kernel drops the lock when its owner dies, so a
    lock left by a killed run is taken over, and the owner's pid and host written into the file (which
    libraries truncate on opening) name the run that holds it or held it last.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, warn=lambda message: print(f"gnndist: warning: {message}", file=sys.stderr)) -> None:
        """Takes the lock; a lock whose owner died is taken over with a warning.

        Raises:
            RunDirectoryBusy: a live run holds it (named by pid and host).
        """
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise RunDirectoryBusy(f"Run directory {self.path.parent} is in use by another gnndist run ({self._describe(self._read_owner())}); wait for it to end or choose another output.dir") from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the previous owner removed the file between our open and lock: lock the new one
        self._fd = fd
        previous = self._read_owner()
        if previous:
            warn(f"taking over the lock of {self.path.parent} from a run that is no longer running ({self._describe(previous)})")
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        os.fsync(fd)

    def release(self) -> None:
        """Removes the lock file and drops the lock (a clean end leaves nothing to take over)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def _read_owner(self) -> dict:
        try:
            owner = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    @staticmethod
    def _describe(owner: dict) -> str:
        if not owner:
            return "owner unknown"
        return f"pid {owner.get('pid')} on host {owner.get('host')}, started {owner.get('started')}"


class RunDirectory:
    """Owns ``output.dir`` for one run.

    Args:
        path: the folder (default: ``runs/<date-time>``). It must be absent, empty or a gnndist run
            directory; anything else is refused, ``force`` or not.
        force: start over in a run directory that holds results (they are deleted).
        resume: continue the run in ``path`` (it must be a gnndist run directory).

    Raises:
        FileExistsError: the folder holds something gnndist did not write, or results without ``force``.
        FileNotFoundError: ``resume`` of a folder that is not a run directory.
        RunDirectoryBusy: another live run uses the folder.
    """

    def __init__(self, path: str | Path | None, *, force: bool = False, resume: bool = False):
        self.path = Path(path) if path is not None else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        existed = self.path.exists()
        if existed and not self.path.is_dir():
            raise FileExistsError(f"Run directory {self.path} exists and is not a directory; choose another output.dir")
        empty = not existed or not any(self.path.iterdir())
        if not empty and not is_run_directory(self.path):
            raise FileExistsError(f"Refusing to use {self.path} as run directory: it is not empty and not a gnndist run directory (no {MARKER_FILE}); choose another output.dir (--force only replaces what gnndist wrote)")
        if resume and empty:
            raise FileNotFoundError(f"Cannot resume {self.path}: it is not a gnndist run directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self.existed, self.started_empty = existed, empty  # a run that fails before an epoch leaves the folder as it found it
        self.lock = RunLock(self.path / LOCK_FILE)
        try:
            self.lock.acquire()
            if self.metrics_path.exists() and not (force or resume):
                raise FileExistsError(f"Run directory {self.path} already holds results ({self.metrics_path.name}); pass --force to overwrite or --resume to continue")
            if not (self.path / MARKER_FILE).is_file():
                write_json(self.path / MARKER_FILE, {"format": "gnndist.run", "gnndist_version": gnndist.__version__})
            if force and not resume:
                for name in RESULT_FILES:
                    (self.path / name).unlink(missing_ok=True)
        except BaseException:
            self.lock.release()
            if not existed:
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, kind, error, tb) -> None:
        self.close(error)

    def close(self, error: BaseException | None = None) -> None:
        """Ends this run's ownership: releases the lock; after a failure (an exception, not Ctrl-C), removes
        the folder if this run created it and logged no epoch, else appends the traceback to ``error.log``."""
        try:
            if not isinstance(error, Exception):  # success, or Ctrl-C: the folder stays (the interrupt message names it)
                return
            if self.started_empty and not self.read_metrics():
                self._remove_own_files()
            else:
                with open(self.path / ERROR_LOG, "a") as file:
                    file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {''.join(traceback.format_exception(error))}\n")
        finally:
            self.lock.release()

    def _remove_own_files(self) -> None:
        """Removes the folder this run created, or empties the empty folder it was given."""
        if not self.existed:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for child in self.path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_config(self, config: JobConfig) -> None:
        with open(self.path / "config.yaml", "w") as file:
            file.write(config.to_yaml())

    def log_epoch(self, metrics: EpochMetrics) -> None:
        append_line(self.metrics_path, json.dumps(metrics.to_dict()))

    def read_metrics(self) -> list[EpochMetrics]:
        """The epochs logged so far (a torn last line, from a crash mid-write, is ignored)."""
        if not self.metrics_path.exists():
            return []
        history = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                history.append(EpochMetrics.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                break
        return history

    def truncate_metrics(self, epochs: int) -> list[EpochMetrics]:
        """Keeps the logged epochs ``< epochs`` (training went back to a checkpoint) and returns them."""
        kept = [m for m in self.read_metrics() if m.epoch < epochs]
        with atomic_path(self.metrics_path) as tmp:
            tmp.write_text("".join(json.dumps(m.to_dict()) + "\n" for m in kept))
        return kept

    def write_workers(self, workers: list[dict]) -> None:
        """Where each worker runs (rank, node_id, ip, pid), rewritten after a recovery."""
        write_json(self.path / "workers.json", workers)

    def log_recovery(self, event: dict) -> None:
        append_line(self.path / "recoveries.jsonl", json.dumps(event))

    def write_summary(self, summary: dict) -> Path:
        path = self.path / "summary.json"
        write_json(path, summary)
        return path
