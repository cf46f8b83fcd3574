"""``gnndist partition DATASET|CONFIG --method metis --parts 4 --out DIR``: partition a dataset to disk.

The argparse namespace stops here: ``run`` turns it into plain arguments of
:func:`gnndist.partition.partition_graph`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

CONFIG_SUFFIXES = (".yaml", ".yml")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``partition`` subcommand."""
    parser = subparsers.add_parser(
        "partition",
        help="partition a dataset into a partition directory and print its quality report",
        description="Partition a dataset (or the dataset of a job config) and write one folder per part. "
        "Flags override the config's partition section.",
    )
    parser.add_argument("source", nargs="?", help="dataset spec (sbm, rmat, planetoid:cora, npz:PATH, ...) or a job config YAML")
    parser.add_argument("--method", help="partitioner name (default: the config's, else metis); see --list")
    parser.add_argument("--parts", type=int, help="number of parts (default: the config's, else 2)")
    parser.add_argument("--out", type=Path, help="partition directory to create (default: the config's partition.dir)")
    parser.add_argument("--halo-hops", type=int, help="halo rings per part (default: the config's, else 1)")
    parser.add_argument("--seed", type=int, help="partitioner seed (default: the config's train.seed, else 0)")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="partitioner option, value in YAML (e.g. balance=[nodes,edges]); repeatable")
    parser.add_argument("--dataset-option", "-d", action="append", default=[], metavar="KEY=VALUE", help="dataset loader option, value in YAML (e.g. num_nodes=200000); repeatable")
    parser.add_argument("--root", help="dataset root folder (planetoid, ogb, npz)")
    parser.add_argument("--feature-width", type=int, help="row width for the predicted exchange volume (default: the dataset's feature width)")
    parser.add_argument("--force", action="store_true", help="replace an existing partition directory")
    parser.add_argument("--list", action="store_true", help="list the available partitioners and exit")
    return parser


def _parse_pairs(pairs: list[str], flag: str) -> dict[str, Any]:
    import yaml

    options = {}
    for text in pairs:
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {text!r} is not of the form KEY=VALUE")
        options[key] = yaml.safe_load(raw) if raw else ""
    return options


def _first(*values: Any) -> Any:
    return next(value for value in values if value is not None)


def run(args: argparse.Namespace) -> int:
    """Loads the dataset, partitions it, writes the directory and prints the quality report."""
    from gnndist.partitioners import available_partitioners

    if args.list:
        print("\n".join(available_partitioners()))
        return 0
    if args.source is None:
        raise ValueError("Expected a dataset spec or a job config YAML to partition (or --list)")
    partitioner_options = _parse_pairs(args.option, "--option")
    dataset_options = _parse_pairs(args.dataset_option, "--dataset-option")
    if args.root is not None:
        dataset_options["root"] = args.root

    if Path(args.source).suffix in CONFIG_SUFFIXES:
        from gnndist.config import load_config

        config = load_config(args.source)
        dataset_name = config.dataset.name
        dataset_options = {**config.dataset.options(), **dataset_options}
        section = config.partition
        method = _first(args.method, section.method)
        num_parts = _first(args.parts, section.parts)
        halo_hops = _first(args.halo_hops, section.halo_hops)
        seed = _first(args.seed, config.train.seed)
        if args.method is None or args.method == section.method:
            partitioner_options = {**section.options, **partitioner_options}
        out = args.out if args.out is not None else (Path(section.dir) if section.dir else None)
    else:
        dataset_name = args.source
        method, num_parts, halo_hops, seed = _first(args.method, "metis"), _first(args.parts, 2), _first(args.halo_hops, 1), _first(args.seed, 0)
        out = args.out
    if out is None:
        raise ValueError("No output directory: pass --out DIR (or set partition.dir in the config)")
    return partition_to_directory(
        dataset_name, dataset_options, method, partitioner_options, num_parts, out,
        halo_hops=halo_hops, seed=seed, force=args.force, feature_width=args.feature_width,
    )


def partition_to_directory(
    dataset_name: str,
    dataset_options: dict[str, Any],
    method: str,
    partitioner_options: dict[str, Any],
    num_parts: int,
    out: Path,
    *,
    halo_hops: int,
    seed: int,
    force: bool,
    feature_width: int | None,
) -> int:
    """The command's steps, with a status line per step and a progress bar while writing parts."""
    from gnndist.data import load_dataset
    from gnndist.partition import partition_graph
    from gnndist.partition.format import check_replaceable
    from gnndist.partitioners import resolve_partitioner

    partitioner = resolve_partitioner(method, **partitioner_options)  # a bad name or option fails before loading data
    check_replaceable(out, force, flag="--force")
    status(f"loading dataset {dataset_name} ...")
    start = time.perf_counter()
    graph = load_dataset(dataset_name, **dataset_options)
    status(f"loaded {graph} in {time.perf_counter() - start:.1f} s")
    status(f"partitioning with {partitioner.method_name} into {num_parts} parts, then writing parts with {halo_hops}-hop halos ...")
    meta, _ = partition_graph(graph, partitioner, num_parts, out, seed=seed, halo_hops=halo_hops, force=force, feature_width=feature_width, progress=True)
    print(meta.quality.table())
    print(f"wrote {out}")
    return 0


def status(message: str) -> None:
    print(f"[gnndist partition] {message}", file=sys.stderr, flush=True)
