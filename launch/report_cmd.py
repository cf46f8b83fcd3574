"""`gnndist report RUN_DIR`: a run's per-epoch metrics as a table and a PNG plot."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

PANELS = (
    ("loss", (("loss", "loss"),), "loss"),
    ("accuracy", (("train_acc", "train"), ("val_acc", "val"), ("test_acc", "test")), "accuracy"),
    ("epoch time", (("epoch_time_s", "epoch"), ("comm_time_s", "communication")), "seconds"),
    ("bytes sent", (("bytes_sent", "halo"), ("grad_bytes", "gradients")), "MiB"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="show a run's metrics as a table and write a PNG plot")
    parser.add_argument("run_dir", help="run directory (output.dir of a gnndist train run)")
    parser.add_argument("--out", help="PNG path (default: RUN_DIR/report.png)")
    parser.add_argument("--no-plot", action="store_true", help="print the table only")


def read_records(run_dir: Path) -> list[dict]:
    """The lines of ``metrics.jsonl`` (a torn last line is ignored)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"No metrics in {run_dir}: expected {path.name} (is it a gnndist run directory?)")
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ValueError(f"{path}: line {number} is not JSON") from None
    if not records:
        raise ValueError(f"{path} holds no epochs yet")
    return records


def _cell(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.2f}"
    if kind == "ms":
        return f"{1000 * value:.1f}"
    if kind == "mib":
        return f"{value / 2**20:.3f}"
    return f"{value:.4f}"


def metrics_table(records: list[dict]) -> str:
    """One row per epoch: loss, accuracies (%) (and link prediction's AUC), epoch time (ms), bytes sent (MiB)."""
    columns = [("epoch", "epoch", None), ("loss", "loss", "f"), ("train %", "train_acc", "pct"), ("val %", "val_acc", "pct"), ("test %", "test_acc", "pct"), ("epoch ms", "epoch_time_s", "ms"), ("sent MiB", "bytes_sent", "mib")]
    if any("val_auc" in r for r in records):  # link prediction: its headline metric beside (empty) accuracies
        columns[5:5] = [("val auc %", "val_auc", "pct"), ("test auc %", "test_auc", "pct")]
    rows = [[str(r["epoch"]) if key == "epoch" else _cell(r.get(key), kind) for _, key, kind in columns] for r in records]
    widths = [max(len(title), *(len(row[i]) for row in rows)) for i, (title, _, _) in enumerate(columns)]
    lines = ["  ".join(title.rjust(w) for (title, _, _), w in zip(columns, widths))]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def plot_metrics(records: list[dict], path: Path, title: str) -> Path:
    """A 2x2 PNG: loss, accuracies, epoch (and communication) time, bytes sent, against the epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 7.5))
    FigureCanvasAgg(figure)
    for ax, (name, series, unit) in zip(figure.subplots(2, 2).flat, PANELS):
        for key, label in series:
            points = [(r["epoch"], r[key] / 2**20 if unit == "MiB" else r[key]) for r in records if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3, label=label)
        ax.set(title=name, xlabel="epoch", ylabel=unit)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    records = read_records(run_dir)
    print(metrics_table(records))
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        from gnndist.launch.job import format_summary
        from gnndist.plan.report import comparison_table, measured_of

        summary = json.loads(summary_path.read_text())
        print("\nSummary")
        print(format_summary(summary))
        if "plan" in summary:
            print("\n" + comparison_table(summary["plan"], measured_of(summary, records)))
    if not args.no_plot:
        out = Path(args.out) if args.out else run_dir / "report.png"
        plot_metrics(records, out, f"gnndist run {run_dir}")
        print(f"\nPlot: {out}")
    return 0
