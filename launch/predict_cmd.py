"""`gnndist predict RUN_DIR`: a trained model's logits, probabilities or embeddings for every node, one file per part.

Inference is the evaluation path of training (exact full-neighbourhood, layer by layer, halo rows exchanged
between workers): on the run's partition by default, on a new one with ``--parts N``, or in this process
with ``--single`` (the default for a run of ``mode=single``). The rows are the same either way.
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from gnndist.train.predict import WHATS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="export a trained model's logits, probabilities or embeddings for every node")
    parser.add_argument("run_dir", help="run directory (output.dir of a gnndist train run)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="settings that do not change the model (e.g. cluster.address=..., partition.method=random)")
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the run's newest valid one)")
    parser.add_argument("--out", help="output folder (default: RUN_DIR/predictions-WHAT[-layerK])")
    parser.add_argument("--what", choices=WHATS, default="logits", help="last layer's output (logits), its softmax (probabilities; sigmoid for multi-label), or layer K's output (embeddings) (default: logits)")
    parser.add_argument("--layer", type=int, metavar="K", help="with --what embeddings: the layer whose raw output (before its activation) is exported, 1..layers (default: the last hidden layer)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--parts", type=int, metavar="N", help="run on N workers over an N-part partition (default: the run's partition)")
    where.add_argument("--single", action="store_true", help="run in this process on the whole graph")
    parser.add_argument("--force", action="store_true", help="replace an export gnndist wrote at --out")
    parser.add_argument("--no-progress", action="store_true", help="no partitioning progress bar")


def run(args: argparse.Namespace) -> int:
    from gnndist.launch.cli import split_overrides

    rest, overrides = split_overrides(args.overrides)
    if rest:
        raise ValueError(f"Expected section.key=value overrides after RUN_DIR (got {', '.join(rest)})")
    meta = predict(Path(args.run_dir), checkpoint=args.checkpoint, out=args.out, what=args.what, layer=args.layer, parts=args.parts, single=args.single, force=args.force, overrides=overrides, progress=not args.no_progress)
    shape = " x ".join(str(n) for n in meta["shape"])
    print(f"Exported {meta['what']} ({shape}, layer {meta['layer']}) of {meta['parts']} part(s) to {meta['out']}")
    accuracy = meta.get("accuracy")
    if accuracy:
        print("Accuracy from these predictions: " + ", ".join(f"{split} {100 * value:.2f} %" for split, value in accuracy.items() if value is not None))
    return 0


def predict(
    run_dir: Path, *, checkpoint: str | None = None, out: str | None = None, what: str = "logits", layer: int | None = None,
    parts: int | None = None, single: bool = False, force: bool = False, overrides: list[str] | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Runs a run's trained model over every node and writes the rows (see :mod:`gnndist.runs`); returns ``meta.json``'s content."""
    import torch

    from gnndist.graph import Graph
    from gnndist.hetero import HeteroGraph
    from gnndist.launch.job import part_sources, partition_directory, prepare_partition, start_ray, start_workers
    from gnndist.modes.base import JobData
    from gnndist.runs import check_export_target, read_run, write_predictions
    from gnndist.train.metrics import SplitCounts
    from gnndist.train.predict import Prediction, finish, output_layers, predict_parts, predict_whole_graph

    if parts is not None and parts < 1:
        raise ValueError(f"Expected --parts >= 1 (got {parts})")
    run = read_run(run_dir, checkpoint, overrides or [])
    config, spec = run.config, run.spec
    layers = output_layers(what, layer, spec.layers)
    target = Path(out) if out else run_dir / (f"predictions-{what}" + (f"-layer{layers}" if what == "embeddings" else ""))
    check_export_target(target, force)  # before any work: a refused folder costs nothing
    data = JobData(config)
    graph: Graph = data.graph
    if isinstance(graph, HeteroGraph):
        raise ValueError(f"dataset.name={config.dataset.name!r} is a heterogeneous graph: gnndist predict does not export heterogeneous runs yet")
    if data.info.fingerprint != run.graph_fingerprint:
        raise ValueError(f"Checkpoint {run.checkpoint} was trained on graph {run.graph_fingerprint}; dataset {config.dataset.name!r} now gives graph {data.info.fingerprint} (the data changed)")
    single = single or (parts is None and config.mode == "single")
    if single:
        predictions = [predict_whole_graph(graph, spec, run.model_state, layers)]
    else:
        if parts is not None and parts != config.partition.parts:  # a new partition in its own keyed folder
            config.cluster.workers = None
            config.partition.dir = None
            config.partition.parts = parts
        with contextlib.ExitStack() as stack:
            start_ray(config, stack)
            directory = partition_directory(config, data, run_dir)
            prepare_partition(config, data, directory, progress=progress)
            group = start_workers(config, stack)
            predictions = predict_parts(group, part_sources(data, directory, group), spec, run.model_state, layers)
    meta: dict[str, Any] = {"run": str(run_dir.resolve()), "checkpoint": str(run.checkpoint.resolve()), "what": what, "layer": layers, "num_layers": spec.layers, "model": spec.name, "dataset": config.dataset.name}
    if what != "embeddings" and graph.y is not None:
        ids, rows = torch.cat([p.global_ids for p in predictions]), torch.cat([p.rows for p in predictions])
        masks = tuple(None if mask is None else mask[ids] for mask in (graph.train_mask, graph.val_mask, graph.test_mask))
        meta["accuracy"] = dict(zip(("train", "val", "test"), SplitCounts.of(rows, graph.y[ids], masks).accuracies()))
    multilabel = graph.y is not None and graph.y.is_floating_point()
    exported = [Prediction(p.global_ids, finish(p.rows, what, multilabel)) for p in predictions]
    write_predictions(target, exported, meta, force=force)
    return {**meta, "out": str(target), "shape": [sum(p.rows.size(0) for p in exported), exported[0].rows.size(1)], "parts": len(exported)}
