"""``gnndist partition DATASET|JOB.yaml [section.key=value ...] --method metis --parts 4 --out DIR``: partition a dataset to disk.

The grammar of ``gnndist train``: the flags are shorthands for config keys (``--parts 4`` is
``partition.parts=4``), and the one job config they build is what gets partitioned. The argparse
namespace stops here: ``run`` turns the config into plain arguments of :func:`gnndist.partition.partition_graph`,
or, for a ``chunked:PATH`` dataset, of :func:`gnndist.partition.chunked_pipeline.partition_chunked` (Ray tasks;
the command never loads the graph).
"""
from __future__ import annotations

import argparse
import json
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
        "Takes the job grammar of gnndist train: a job YAML and section.key=value overrides (dataset.*, partition.*, train.seed) "
        "in any order with the options; the flags below are shorthands for those keys.",
    )
    parser.add_argument("arguments", nargs="*", metavar="SOURCE | section.key=value", help="a dataset spec (sbm, rmat, planetoid:cora, npz:PATH, ...) or a job YAML, and section.key=value overrides")
    parser.add_argument("--method", help="partitioner name: partition.method (default metis); see --list")
    parser.add_argument("--parts", type=int, help="number of parts: partition.parts (default 2)")
    parser.add_argument("--out", type=Path, help="partition directory to create: partition.dir")
    parser.add_argument("--halo-hops", type=int, help="halo rings per part: partition.halo_hops (default 1)")
    parser.add_argument("--seed", type=int, help="partitioner seed: train.seed (default 0)")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="partitioner option, value in YAML (e.g. balance=[nodes,edges]): partition.options.KEY=VALUE; repeatable")
    parser.add_argument("--dataset-option", "-d", action="append", default=[], metavar="KEY=VALUE", help="dataset loader option, value in YAML (e.g. num_nodes=200000): dataset.KEY=VALUE; repeatable")
    parser.add_argument("--root", help="dataset root folder (planetoid, ogb, npz): dataset.root")
    parser.add_argument("--feature-width", type=int, help="row width for the predicted exchange volume (default: the dataset's feature width)")
    parser.add_argument("--force", action="store_true", help="replace an existing partition directory")
    parser.add_argument("--list", action="store_true", help="list the available partitioners and exit")
    return parser


# Flag -> the config key it is a shorthand for.
SHORTHANDS = {"method": "partition.method", "parts": "partition.parts", "out": "partition.dir", "halo_hops": "partition.halo_hops", "seed": "train.seed", "root": "dataset.root"}
PAIR_SHORTHANDS = {"option": ("--option", "partition.options"), "dataset_option": ("--dataset-option", "dataset")}


def shorthand_overrides(args: argparse.Namespace, source: str | None) -> list[str]:
    """The ``section.key=value`` overrides a dataset spec ``source`` and the shorthand flags stand for."""
    overrides = [] if source is None or Path(source).suffix in CONFIG_SUFFIXES else [f"dataset.name={json.dumps(source)}"]
    for dest, key in SHORTHANDS.items():
        value = getattr(args, dest)
        if value is not None:  # quoted: a directory named 2024 or null stays a string
            overrides.append(f"{key}={value if isinstance(value, int) else json.dumps(str(value))}")
    for dest, (flag, section) in PAIR_SHORTHANDS.items():
        for text in getattr(args, dest):
            key, sep, _ = text.partition("=")
            if not sep or not key:
                raise ValueError(f"{flag} {text!r} is not of the form KEY=VALUE")
            overrides.append(f"{section}.{text}")
    return overrides


def run(args: argparse.Namespace) -> int:
    """Builds the job config, partitions its dataset, writes the directory and prints the quality report."""
    from gnndist.config import load_config
    from gnndist.launch.cli import split_overrides
    from gnndist.partitioners import available_partitioners

    if args.list:
        print("\n".join(available_partitioners()))
        return 0
    sources, overrides = split_overrides(args.arguments)
    if len(sources) > 1:
        raise ValueError(f"Expected one dataset spec or job YAML, got {', '.join(sources)} (overrides have the form section.key=value)")
    source = sources[0] if sources else None
    config_path = source if source is not None and Path(source).suffix in CONFIG_SUFFIXES else None
    config = load_config(config_path, [*shorthand_overrides(args, source), *overrides])  # explicit key=value wins
    section = config.partition
    if section.dir is None:
        raise ValueError("No output directory: pass --out DIR (or partition.dir=DIR, or set partition.dir in the config)")
    return partition_to_directory(
        config.dataset.name, config.dataset.options(), section.method, section.options, section.parts, Path(section.dir),
        halo_hops=section.halo_hops, seed=config.train.seed, force=args.force, feature_width=args.feature_width, cluster=config.cluster,
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
    cluster: Any = None,
) -> int:
    """The command's steps, with a status line per step and a progress bar while writing parts.

    A ``chunked:PATH`` dataset is partitioned by Ray tasks (:func:`gnndist.partition.chunked_pipeline.partition_chunked`
    on ``cluster.address``, or an embedded Ray): this process never loads the graph.
    """
    from gnndist.data.registry import split_spec
    from gnndist.partition.format import check_replaceable
    from gnndist.partitioners import resolve_partitioner

    partitioner = resolve_partitioner(method, **partitioner_options)  # a bad name or option fails before loading data
    check_replaceable(out, force, flag="--force")
    name, arg = split_spec(dataset_name)
    arguments = dict(seed=seed, halo_hops=halo_hops, force=force, feature_width=feature_width, progress=True)
    if name == "chunked" and arg is not None:
        meta = _partition_chunked(arg, dataset_options, partitioner, num_parts, out, cluster, arguments)
    else:
        from gnndist.data import load_dataset
        from gnndist.partition import partition_graph

        status(f"loading dataset {dataset_name} ...")
        start = time.perf_counter()
        graph = load_dataset(dataset_name, **dataset_options)
        status(f"loaded {graph} in {time.perf_counter() - start:.1f} s")
        status(f"partitioning with {partitioner.method_name} into {num_parts} parts, then writing parts with {halo_hops}-hop halos ...")
        meta, _ = partition_graph(graph, partitioner, num_parts, out, **arguments)
    print(meta.quality.table())
    print(f"wrote {out}")
    return 0


def _partition_chunked(path: str, dataset_options: dict[str, Any], partitioner: Any, num_parts: int, out: Path, cluster: Any, arguments: dict[str, Any]) -> Any:
    """Partitions a chunked folder with Ray tasks (an embedded Ray unless ``cluster.address`` names one)."""
    from gnndist.data.chunked import ChunkedGraph
    from gnndist.partition.chunked_pipeline import partition_chunked
    from gnndist.runtime import ray_cluster

    root = dataset_options.get("root")
    folder = Path(root) / path if root is not None and not Path(path).is_absolute() else Path(path)
    meta = ChunkedGraph.open(folder).meta  # a missing or foreign folder fails before Ray starts
    address = None if cluster is None else cluster.address
    status(f"partitioning the chunked graph {folder} ({meta.num_nodes:,} nodes, {meta.num_edges:,} edges, {len(meta.edge_chunks)} edge chunks) "
           f"with {partitioner.method_name} into {num_parts} parts as Ray tasks ({'embedded Ray' if address is None else address}) ...")
    runtime_env = None if cluster is None else cluster.runtime_env
    with ray_cluster(address, runtime_env=runtime_env):
        partition, _ = partition_chunked(folder, partitioner, num_parts, out, **arguments)
    return partition


def status(message: str) -> None:
    print(f"[gnndist partition] {message}", file=sys.stderr, flush=True)
