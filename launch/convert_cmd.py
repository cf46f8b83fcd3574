"""``gnndist convert SOURCE OUT [section.key=value ...] [--chunk-edges N]``: write a dataset as a chunked graph folder.

The grammar of ``gnndist partition``: SOURCE is a dataset spec (sbm, rmat, planetoid:cora, ogb:NAME, npz:PATH,
chunked:PATH) or a job YAML whose dataset section is used, ``dataset.key=value`` overrides and ``-d key=value``
shorthands set loader options. ``sbm`` and ``rmat`` stream (never all edges in memory) unless ``--in-memory``.
The argparse namespace stops here: ``run`` passes plain values to :func:`gnndist.data.chunked.write_chunked`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gnndist.launch.partition_cmd import CONFIG_SUFFIXES


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``convert`` subcommand."""
    parser = subparsers.add_parser(
        "convert",
        help="write a dataset as a chunked graph folder (meta.json + .npy chunks; sbm/rmat streamed)",
        description="Write any dataset gnndist loads as a chunked graph folder (see README, 'Chunked graphs'). "
        "sbm and rmat are generated chunk by chunk without holding all edges (a documented variant of the in-memory generator; --in-memory converts that one). "
        "The output folder appears only when complete: an error or Ctrl-C leaves nothing.",
    )
    parser.add_argument("arguments", nargs="*", metavar="SOURCE OUT | section.key=value", help="a dataset spec or a job YAML, the folder to write, and dataset.key=value overrides")
    parser.add_argument("--chunk-edges", type=int, default=None, help="edges per edge chunk (default 1048576)")
    parser.add_argument("--chunk-nodes", type=int, default=None, help="nodes per node-data chunk (default 262144)")
    parser.add_argument("--dataset-option", "-d", action="append", default=[], metavar="KEY=VALUE", help="dataset loader option, value in YAML (e.g. num_nodes=4000000): dataset.KEY=VALUE; repeatable")
    parser.add_argument("--root", help="dataset root folder (planetoid, ogb, npz, chunked): dataset.root")
    parser.add_argument("--in-memory", action="store_true", help="sbm/rmat: generate the whole graph in memory (exactly the graph dataset.name=sbm trains on) instead of streaming")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder (only if empty or a chunked graph gnndist wrote)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Builds the dataset config from the arguments and writes the chunked folder."""
    from gnndist.config import load_config
    from gnndist.data.chunked import DEFAULT_CHUNK_EDGES, DEFAULT_CHUNK_NODES, check_chunked_replaceable, open_source, write_chunked
    from gnndist.launch.cli import split_overrides

    positionals, overrides = split_overrides(args.arguments)
    if len(positionals) != 2:
        raise ValueError(f"Expected SOURCE and OUT (got {len(positionals)} positional argument(s): {' '.join(positionals) or 'none'}); overrides have the form section.key=value")
    source, out = positionals[0], Path(positionals[1])
    config_path = source if Path(source).suffix in CONFIG_SUFFIXES else None
    shorthands = [] if config_path else [f"dataset.name={json.dumps(source)}"]
    if args.root is not None:
        shorthands.append(f"dataset.root={json.dumps(args.root)}")
    for text in args.dataset_option:
        key, sep, _ = text.partition("=")
        if not sep or not key:
            raise ValueError(f"--dataset-option {text!r} is not of the form KEY=VALUE")
        shorthands.append(f"dataset.{text}")
    config = load_config(config_path, [*shorthands, *overrides])  # explicit key=value wins
    check_chunked_replaceable(out, args.force)  # before generating: a refused folder costs nothing
    start = time.perf_counter()
    graph_source = open_source(config.dataset.name, config.dataset.options(), in_memory=args.in_memory)
    status(f"converting {config.dataset.name}{' (streamed)' if graph_source.description['streamed'] else ''} ...")
    meta = write_chunked(
        graph_source, out, chunk_edges=args.chunk_edges or DEFAULT_CHUNK_EDGES, chunk_nodes=args.chunk_nodes or DEFAULT_CHUNK_NODES,
        force=args.force, progress=not args.no_progress,
    )
    status(f"wrote {meta.num_nodes} nodes, {meta.num_edges} edges in {len(meta.edge_chunks)} edge and {len(meta.node_chunks)} node chunks in {time.perf_counter() - start:.1f} s")
    print(f"wrote {out} (fingerprint {meta.fingerprint})")
    return 0


def status(message: str) -> None:
    print(f"[gnndist convert] {message}", file=sys.stderr, flush=True)
