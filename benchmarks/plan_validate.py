"""Planner validation: real ``gnndist train`` jobs at P = 1, 2, 4 (full-graph ``sync`` and ``stale``, mini-batch)
against what ``gnndist plan`` predicted for them.

Every job records its own prediction (``summary.json`` key ``plan``) from a calibration measured at the start
of this run, on this machine, so the two are measured minutes apart under the same load. Measured: the median
epoch time over the epochs after the first, the median bytes per epoch (full-graph halo bytes, mini-batch remote
feature bytes) and the largest worker's peak resident memory. Writes ``plan_validate.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

CASES = (("fullgraph", "sync"), ("fullgraph", "stale"), ("minibatch", "sync"))


def job_overrides(nodes: int, epochs: int, num_parts: int, mode: str, strategy: str, calibration: Path, out: Path) -> list[str]:
    return [
        f"mode={mode}", "dataset.name=sbm", f"dataset.num_nodes={nodes}", "dataset.avg_degree=10", "dataset.feature_dim=128", "model.name=sage", "model.hidden=64",
        "model.layers=2", f"partition.parts={num_parts}", "partition.method=metis", f"comm.strategy={strategy}", f"train.epochs={epochs}", f"train.eval_every={epochs}",
        "train.batch_size=2048", "train.fanouts=[10,5]", f"plan.calibration={calibration}", f"output.dir={out}",
    ]


def measured(run_dir: Path, summary: dict[str, Any]) -> dict[str, float | None]:
    """Medians over the epochs after the first (it warms up allocators and the exchange), and the largest worker peak."""
    from gnndist.launch.report_cmd import read_records
    from gnndist.plan.report import measured_of

    records = read_records(run_dir)
    return measured_of(summary, records[1:] or records)


def error_pct(predicted: float | None, actual: float | None) -> float | None:
    return None if predicted is None or not actual else 100 * (predicted - actual) / actual


def table(rows: list[dict[str, Any]]) -> str:
    header = "| P | mode | strategy | epoch s predicted | measured | error | MiB/epoch predicted | measured | error | worker peak GiB predicted | measured | error |"
    lines = [header, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pct = lambda v: "-" if v is None else f"{v:+.0f} %"  # noqa: E731
    for r in rows:
        p, m = r["predicted"], r["measured"]
        lines.append(
            f"| {r['parts']} | {r['mode']} | {r['strategy'] if r['mode'] == 'fullgraph' else '-'} | {p['epoch_s']:.3f} | {m['epoch_s']:.3f} | {pct(error_pct(p['epoch_s'], m['epoch_s']))} "
            f"| {p['halo_bytes'] / 2**20:.1f} | {(m['halo_bytes'] or 0) / 2**20:.1f} | {pct(error_pct(p['halo_bytes'], m['halo_bytes']))} "
            f"| {p['peak_worker_bytes'] / 2**30:.2f} | {(m['peak_worker_bytes'] or 0) / 2**30:.2f} | {pct(error_pct(p['peak_worker_bytes'], m['peak_worker_bytes']))} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gnndist bench plan", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (runs, calibration.json, plan_validate.md/.json)")
    parser.add_argument("--nodes", type=int, default=100_000, help="sbm nodes (default: 100000, average degree 10, 128 features)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per job (default: 6; the first is left out of the medians)")
    parser.add_argument("--parts", nargs="+", type=int, default=[1, 2, 4], help="worker counts (default: 1 2 4)")
    parser.add_argument("--calibration", type=Path, help="reuse this calibration file (default: measure OUT/calibration.json now)")
    args = parser.parse_args(argv)
    from gnndist.config import load_config
    from gnndist.launch.job import run_job
    from gnndist.plan import calibration_key, load_or_measure

    args.out.mkdir(parents=True, exist_ok=True)
    calibration = args.calibration or args.out / "calibration.json"
    load_or_measure(calibration, calibration_key("sage", 64, 2, "auto"), log=lambda line: print(line, flush=True))
    rows, start = [], time.perf_counter()
    for num_parts in args.parts:
        for mode, strategy in CASES:
            if num_parts == 1 and strategy == "stale":
                continue  # one worker has no halo: stale equals sync
            run_dir = args.out / "runs" / f"{mode}-{strategy}-p{num_parts}"
            config = load_config(None, job_overrides(args.nodes, args.epochs, num_parts, mode, strategy, calibration.resolve(), run_dir))
            print(f"[plan validate] P={num_parts} {mode} {strategy} ...", flush=True)
            summary = run_job(config, force=True, progress=False)
            rows.append({"parts": num_parts, "mode": mode, "strategy": strategy, "predicted": summary["plan"], "measured": measured(run_dir, summary)})
    command = "gnndist bench plan " + " ".join(sys.argv[1:] if argv is None else argv)
    text = f"{table(rows)}\n\n`{command}` ({time.perf_counter() - start:.0f} s; calibration {calibration})\n"
    (args.out / "plan_validate.md").write_text(text)
    (args.out / "plan_validate.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
