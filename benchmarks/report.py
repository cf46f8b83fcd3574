"""The one report writer of the benchmarks: a JSON file of everything measured and a Markdown table.

Both are written atomically (:mod:`gnndist.io`), so an interrupted run never leaves a half-written
report beside a complete one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gnndist.io import atomic_path, write_json


def write_text(path: Path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_report(out: Path, name: str, result: dict[str, Any], markdown: str) -> dict[str, Path]:
    """Writes ``out/NAME.json`` (``result``) and ``out/NAME.md`` (``markdown``); returns ``{"json": ..., "markdown": ...}``."""
    out = Path(out)
    write_json(out / f"{name}.json", result)
    return {"json": out / f"{name}.json", "markdown": write_text(out / f"{name}.md", markdown)}
