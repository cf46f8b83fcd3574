"""Atomic writes: a temp file or folder beside the target, fsynced, renamed into place; never a half-written one."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator


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


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 4 MiB blocks (memory stays flat whatever the file's size)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


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


def install_dir(tmp: Path, target: Path) -> None:
    """Renames the finished, fsynced folder ``tmp`` to ``target``, replacing an existing ``target``.

    The old folder is renamed aside before the new one is renamed in, and renamed back if that fails,
    so an interruption leaves either the old or the new folder, complete, at ``target``. Callers decide
    beforehand whether replacing is allowed.
    """
    if not target.exists() and not target.is_symlink():
        os.rename(tmp, target)
        fsync_dir(target.parent)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    fsync_dir(target.parent)
    if old.is_symlink():  # the link moved aside; the folder it points to is left alone
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)


def read_meta_json(directory: Path, meta_file: str, *, kind: str) -> Any:
    """The parsed ``directory/meta_file`` of a folder gnndist wrote (``kind``: "Partition directory").

    Raises:
        FileNotFoundError: the folder or its meta file is missing.
        ValueError: the meta file is not valid JSON.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"{kind} {directory} does not exist")
    path = directory / meta_file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {directory} is not a complete {kind[0].lower() + kind[1:]}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupted?): {error}") from error


def check_replaceable(directory: Path, force: bool, *, kind: str, ours: str, is_ours: Callable[[Path], bool], flag: str = "--force") -> None:
    """Raises unless the folder ``directory`` may be written: absent, or (with ``force``) empty or one gnndist wrote.

    ``--force`` replaces only what gnndist wrote (``is_ours``: its ``meta.json`` carries gnndist's marker),
    so a user's folder is never deleted.

    Args:
        directory: the folder to write.
        force: replacing was asked for.
        kind: what the folder is, for the messages ("Partition directory").
        ours: what ``is_ours`` accepts, for the messages ("a partition directory gnndist wrote").
        is_ours: whether a folder carries gnndist's marker.
        flag: how the caller's user asks for ``force``.

    Raises:
        FileExistsError: naming ``directory`` and why it is kept.
    """
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileExistsError(f"{kind} {directory} exists and is not a directory; gnndist never replaces it, --force or not: choose another path")
    if not force:
        raise FileExistsError(f"{kind} {directory} already exists; pass {flag} to replace it")
    if any(directory.iterdir()) and not is_ours(directory):
        raise FileExistsError(
            f"Refusing to replace {directory}: it is not empty and not {ours} (no gnndist meta.json); "
            "--force only replaces what gnndist wrote: choose another directory, or empty or remove it yourself"
        )


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
