"""Contenders in their own processes: one JSON request per stdin line, one JSON answer per stdout line.

Benchmarks run every peer library (PyG, DGL) and gnndist's single-process contender in a child
process, so each one's peak memory is its own and DGL can live in another environment (DGL 2.1
needs torch 2.2). The parent starts a child with :class:`ChildProcess`; the child answers with
:func:`serve`. The DGL environment's python is named by ``--dgl-python PATH`` or the
``GNNDIST_DGL_PYTHON`` environment variable (:func:`find_dgl_python`); without either, DGL is
skipped with a message naming both.

This module imports only the standard library: it also runs inside the DGL environment, where
gnndist is not installed (the peer script :mod:`peers` is started by file path there).
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

DGL_PYTHON_ENV = "GNNDIST_DGL_PYTHON"
PROBE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DGLPython:
    """Where DGL runs, or why it does not.

    Attributes:
        python: the interpreter of an environment that imports ``dgl``; None when DGL is skipped.
        note: why DGL is skipped (None when ``python`` is set).
    """

    python: Path | None
    note: str | None = None


NO_DGL = DGLPython(None, "skipped (--no-dgl)")


def find_dgl_python(path: Path | str | None, *, disabled: bool = False, environ: Mapping[str, str] | None = None) -> DGLPython:
    """The python of the DGL environment: ``path`` (``--dgl-python``), else ``$GNNDIST_DGL_PYTHON``.

    The interpreter is checked by importing ``dgl`` with it (bounded by 300 s).

    Args:
        path: the ``--dgl-python`` flag (None: not given).
        disabled: ``--no-dgl`` was given.
        environ: where to read ``GNNDIST_DGL_PYTHON`` (default: ``os.environ``; read at the CLI edge only).
    """
    if disabled:
        return NO_DGL
    environ = os.environ if environ is None else environ
    if path is None and environ.get(DGL_PYTHON_ENV):
        path = environ[DGL_PYTHON_ENV]
    if path is None:
        return DGLPython(None, f"skipped: no DGL environment (pass --dgl-python PATH or set {DGL_PYTHON_ENV})")
    python = Path(path)
    if not python.exists():
        return DGLPython(None, f"skipped: {python} does not exist (--dgl-python / {DGL_PYTHON_ENV})")
    try:  # a half-built environment has the interpreter but not DGL
        probe = subprocess.run([str(python), "-c", "import dgl"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=dict(os.environ, DGLBACKEND="pytorch"))
    except subprocess.TimeoutExpired:
        return DGLPython(None, f"skipped: importing dgl with {python} took over {PROBE_TIMEOUT_S:.0f} s")
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return DGLPython(None, f"skipped: {python} cannot import dgl ({reason})")
    return DGLPython(python)


def peer_command(python: Path | str, kind: str, spec: Mapping[str, Any]) -> list[str]:
    """The command line of a peer child (:mod:`peers`, started by file path: no gnndist needed there)."""
    return [str(python), str(Path(__file__).with_name("peers.py")), kind, json.dumps(dict(spec))]


class ChildProcess:
    """A child answering one JSON line per request; its first line (sent unasked) is :attr:`info`.

    Args:
        command: the child's command line.
        label: names the child in errors.
        timeout_s: bound on every answer (and on the first line); the child is killed past it.
        threads: OpenMP/MKL threads of the child (None: inherited).
        env: more environment variables of the child.
    """

    def __init__(self, command: Sequence[str], label: str, timeout_s: float, threads: int | None = None, env: Mapping[str, str] | None = None):
        env = dict(os.environ, DGLBACKEND="pytorch", **(env or {}))
        if threads is not None:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.label, self.timeout_s = label, timeout_s
        self.process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        # one request, one answer line: nothing is ever left in the pipe's buffer, so select() is exact
        if not select.select([self.process.stdout], [], [], self.timeout_s)[0]:
            self.process.kill()
            self.process.wait()
            raise TimeoutError(f"{self.label} did not answer within {self.timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label} exited with code {self.process.wait()} (see its stderr above)")
        return json.loads(line)

    def request(self, op: str, **fields: Any) -> dict:
        """Sends ``{"op": op, **fields}``; returns the answer."""
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Closes stdin (the child's loop ends) and waits; kills a child that does not exit within 60 s."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def answer(payload: Mapping[str, Any]) -> None:
    """Writes one answer line to the parent."""
    sys.stdout.write(json.dumps(dict(payload)) + "\n")
    sys.stdout.flush()


def serve(info: Mapping[str, Any], handlers: Mapping[str, Callable[..., Mapping[str, Any]]]) -> None:
    """The child side: sends ``info``, then answers every request line with ``handlers[op](**fields)``."""
    answer(info)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op not in handlers:
            raise ValueError(f"Unknown request {op!r}; expected one of {sorted(handlers)}")
        answer(handlers[op](**request))
