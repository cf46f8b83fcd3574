"""`gnndist train [job.yaml] [section.key=value ...]`."""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a GNN (with no arguments: an embedded default on a generated graph)")
    parser.add_argument("config", nargs="?", help="job YAML file (optional)")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.epochs=50 model.name=gcn")
    parser.add_argument("--force", action="store_true", help="overwrite results in an existing output.dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from gnndist.config import load_config
    from gnndist.launch.job import format_summary, run_job

    config_path, overrides = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:  # `gnndist train key=value` without a file
        config_path, overrides = None, [config_path, *overrides]
    config = load_config(config_path, overrides)
    summary = run_job(config, force=args.force, progress=not args.no_progress)
    print("\nSummary")
    print(format_summary(summary))
    return 0
