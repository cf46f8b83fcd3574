"""The native kernel's build: compiled once into a keyed cache folder, reused, failures explained."""
from __future__ import annotations

import shutil

import pytest

from gnndist.aggregation import native_kernel

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")


def test_builds_once_then_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    build = native_kernel.load_native_library.__wrapped__  # bypass the per-process cache
    first = build()
    assert first.path.is_file() and str(first.path).startswith(str(tmp_path / "gnndist" / "kernels"))
    assert first.compile_seconds > 0
    second = build()
    assert second.path == first.path and second.compile_seconds == 0.0
    assert not list(first.path.parent.glob("tmp*")), "the temporary build folder is removed"


def test_compiler_failure_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native_kernel, "C_SOURCE", "this is not C")
    with pytest.raises(RuntimeError, match="could not build the native aggregation kernel"):
        native_kernel.load_native_library.__wrapped__()
