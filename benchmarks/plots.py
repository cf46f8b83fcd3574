"""PNG plots of aggregation benchmark results (matplotlib's Agg canvas, no pyplot state)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MARKERS = {"pull": "o", "push": "s", "gemm": "^"}
PHASES = (("fwd_median_s", "forward"), ("fwd_bwd_median_s", "forward + backward"))


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors + colormaps["Dark2"].colors
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(names))}


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)
    return path


def _line_plot(rows, x_of, x_label: str, title: str, path: Path, colors: dict, log_x: bool = False) -> Path | None:
    """One panel per phase: median time (log scale) against ``x_of(row)``, a line per abstraction."""
    ok = [row for row in rows if row.status == "ok"]
    if len({x_of(row) for row in ok}) < 2:
        return None
    figure = Figure(figsize=(13, 4.8))
    axes = figure.subplots(1, 2)
    figure.subplots_adjust(left=0.06, right=0.83, bottom=0.12, top=0.86, wspace=0.22)
    for ax, (metric, phase) in zip(axes, PHASES):
        for name in sorted({row.abstraction for row in ok}):
            points = sorted((x_of(row), getattr(row, metric)) for row in ok if row.abstraction == name)
            if not points:
                continue
            marker = MARKERS.get(next(row.propagation for row in ok if row.abstraction == name), "o")
            ax.plot([p[0] for p in points], [p[1] * 1e3 for p in points], marker=marker, color=colors[name], label=name)
        ax.set_yscale("log")
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(x_label)
        ax.set_ylabel("median time per call (ms, log)")
        ax.set_title(phase)
        ax.grid(True, alpha=0.3)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9)
    figure.suptitle(title)
    return _save(figure, path)


def _common(values):
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else None


def _sweep(row, key):
    return json.loads(row.sweep).get(key) if row.sweep else None


def write_plots(rows: Sequence, reports: Sequence, out: Path) -> dict[str, Path]:
    """Writes time-vs-degree, time-vs-width, time-vs-skew and fraction-of-peak plots per device; returns name -> path."""
    out = Path(out)
    colors = _colors({row.abstraction for row in rows})
    files: dict[str, Path] = {}
    devices = list(dict.fromkeys(row.device for row in rows))
    for device in devices:
        suffix = "" if len(devices) == 1 else "_" + device.replace(":", "")
        on_device = [row for row in rows if row.device == device and row.status == "ok"]
        sums = [row for row in on_device if row.reduce == "sum" and not row.weighted]

        uniform = [row for row in sums if row.family == "uniform" and _sweep(row, "avg_degree") is not None]
        size = _common(_sweep(row, "num_nodes") for row in uniform)
        width = _common(row.width for row in uniform if _sweep(row, "num_nodes") == size)
        degree_rows = [row for row in uniform if _sweep(row, "num_nodes") == size and row.width == width]
        path = _line_plot(degree_rows, lambda r: r.avg_degree, "average in-degree", f"{device}: sum over uniform random graphs ({size} nodes, F={width})", out / f"time_vs_degree{suffix}.png", colors)
        if path:
            files["time_vs_degree" + suffix] = path

        widths_per_graph = Counter()
        for row in sums:
            widths_per_graph[row.graph] = len({r.width for r in sums if r.graph == row.graph})
        if widths_per_graph:
            graph = max(widths_per_graph, key=lambda g: (widths_per_graph[g], max(r.num_edges for r in sums if r.graph == g)))
            path = _line_plot([r for r in sums if r.graph == graph], lambda r: r.width, "feature width F (log2)", f"{device}: sum over {graph}", out / f"time_vs_width{suffix}.png", colors, log_x=True)
            if path:
                files["time_vs_width" + suffix] = path

        rmat = [row for row in sums if _sweep(row, "rmat_a") is not None]
        width = _common(row.width for row in rmat)
        path = _line_plot([r for r in rmat if r.width == width], lambda r: _sweep(r, "rmat_a"), "RMAT skew a (0.25 = uniform)", f"{device}: sum over RMAT graphs (F={width})", out / f"time_vs_skew{suffix}.png", colors)
        if path:
            files["time_vs_skew" + suffix] = path

        path = _fraction_heatmap(on_device, device, out / f"fraction_of_peak{suffix}.png")
        if path:
            files["fraction_of_peak" + suffix] = path
    return files


def _fraction_heatmap(rows, device: str, path: Path) -> Path | None:
    """Forward GB/s as a fraction of the probed copy bandwidth: abstractions x graphs (sum, widest F of each graph)."""
    rows = [row for row in rows if row.reduce == "sum" and row.fwd_fraction_of_copy is not None]
    if not rows:
        return None
    graphs = list(dict.fromkeys(row.graph for row in rows))
    widest = {g: max(r.width for r in rows if r.graph == g) for g in graphs}
    names = sorted({row.abstraction for row in rows})
    grid = [[float("nan")] * len(graphs) for _ in names]
    for row in rows:
        if row.width == widest[row.graph]:
            grid[names.index(row.abstraction)][graphs.index(row.graph)] = row.fwd_fraction_of_copy
    height = 0.45 * len(names) + 2.4
    figure = Figure(figsize=(max(7.0, 1.0 * len(graphs) + 4), height))
    ax = figure.subplots()
    figure.subplots_adjust(left=0.2, right=0.98, bottom=1.5 / height, top=1 - 0.45 / height)
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=max(1.0, max((v for line in grid for v in line if v == v), default=1.0)), aspect="auto")
    for i, line in enumerate(grid):
        for j, value in enumerate(line):
            if value == value:
                ax.text(j, i, f"{100 * value:.0f}%", ha="center", va="center", fontsize=8, color="white" if value < 0.5 else "black")
    ax.set_xticks(range(len(graphs)), [f"{g}\nF={widest[g]}" for g in graphs], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    figure.colorbar(image, ax=ax, label="forward GB/s / probed copy GB/s")
    ax.set_title(f"{device}: fraction of peak memory bandwidth (sum, forward)")
    return _save(figure, path)


def write_scaling_plot(rows: Sequence, path: Path) -> Path | None:
    """Distributed benchmark: per-layer time against the number of workers (exchange and aggregation stacked), one panel per graph."""
    ok = [row for row in rows if row.status == "ok"]
    graphs = list(dict.fromkeys((row.graph, row.width) for row in ok))
    if not graphs:
        return None
    figure = Figure(figsize=(5.5 * len(graphs) + 1, 4.6))
    axes = figure.subplots(1, len(graphs), squeeze=False)[0]
    figure.subplots_adjust(left=0.08, right=0.97, bottom=0.14, top=0.84, wspace=0.3)
    for ax, (graph, width) in zip(axes, graphs):
        points = sorted((row for row in ok if (row.graph, row.width) == (graph, width)), key=lambda row: row.workers)
        labels = [str(row.workers) for row in points]
        exchange = [row.exchange_s * 1e3 for row in points]
        aggregate = [row.aggregate_s * 1e3 for row in points]
        ax.bar(labels, exchange, color="#d95f02", label="halo exchange (forward)")
        ax.bar(labels, aggregate, bottom=exchange, color="#1b9e77", label="local aggregation (forward)")
        ax.plot(labels, [row.fwd_bwd_s * 1e3 for row in points], "ko-", label="forward + backward")
        ax.set_xlabel("workers (parts)")
        ax.set_ylabel("slowest worker, ms per layer")
        ax.set_title(f"{graph}, F={width}, {points[0].abstraction}")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Distributed aggregation ({ok[0].device}, {ok[0].partitioner} partitions)")
    return _save(figure, path)
