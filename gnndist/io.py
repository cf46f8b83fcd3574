"""Atomic file writes: write a temp file beside the target, fsync, rename; never a half-written file."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes) -> str:
    """Writes ``data`` to ``path`` and fsyncs it (inside a temp directory that is renamed later); returns its sha256."""
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yields a temp path to write; on success it is fsynced and renamed over ``target``, on error removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(target: Path, value: Any) -> None:
    """Writes ``value`` as indented JSON, atomically."""
    with atomic_path(Path(target)) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")


def append_line(target: Path, line: str) -> None:
    """Appends one line and fsyncs it (JSON-lines logs survive a crash up to the last full line)."""
    with open(target, "a") as file:
        file.write(line.rstrip("\n") + "\n")
        file.flush()
        os.fsync(file.fileno())
