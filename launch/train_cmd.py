"""`gnndist train [job.yaml] [section.key=value ...]`."""
from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a GNN (with no arguments: an embedded default on a generated graph)")
    parser.add_argument("arguments", nargs="*", metavar="JOB.yaml | section.key=value", help="an optional job YAML file and section.key=value overrides (e.g. train.epochs=50 model.name=gcn), in any order with the options")
    parser.add_argument("--force", action="store_true", help="overwrite results in an existing output.dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (nor, outside a terminal, its one line per epoch)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest valid checkpoint (its config.yaml unless a config is given; overrides such as train.epochs=N apply)")
    parser.add_argument("--address", help="Ray cluster to run on (host:port, ray://host:port or auto); sets cluster.address")


def run(args: argparse.Namespace) -> int:
    from gnndist.config import load_config
    from gnndist.launch.cli import split_overrides
    from gnndist.launch.job import format_summary, run_job

    files, overrides = split_overrides(args.arguments)
    if len(files) > 1:
        raise ValueError(f"Expected at most one job YAML file, got {', '.join(files)} (overrides have the form section.key=value)")
    config_path = files[0] if files else None
    if args.resume is not None:
        run_dir = Path(args.resume)
        if config_path is None:
            config_path = run_dir / "config.yaml"
            if not config_path.is_file():
                raise FileNotFoundError(f"Cannot resume {run_dir}: no config.yaml there (is it a gnndist run directory?)")
        overrides.append(f"output.dir={run_dir}")
    if args.address is not None:
        overrides.append(f"cluster.address={args.address}")
    config = load_config(config_path, overrides)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None  # shut down cleanly, like Ctrl-C
    try:
        summary = run_job(config, force=args.force, progress=not args.no_progress, resume=args.resume is not None)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print("\nSummary")
    print(format_summary(summary))
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
