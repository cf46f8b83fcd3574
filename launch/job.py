"""`gnndist train`: config -> dataset -> trainer for the mode -> epoch loop -> run directory."""
from __future__ import annotations

import platform
import time
from typing import Any

import torch

from gnndist.config import JobConfig
from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.train.loop import FitResult, fit
from gnndist.train.single import SingleProcessTrainer, build_model
from gnndist.launch.rundir import RunDirectory


def versions() -> dict[str, str]:
    import ray
    import torch_geometric

    import gnndist

    return {"gnndist": gnndist.__version__, "torch": torch.__version__, "torch_geometric": torch_geometric.__version__, "ray": ray.__version__, "python": platform.python_version()}


def make_trainer(config: JobConfig, graph: Graph):
    """The epoch trainer for ``config.mode``."""
    if config.mode == "single":
        model_cfg = config.model
        model = build_model(graph, model_cfg.name, model_cfg.hidden, model_cfg.layers, model_cfg.dropout, config.aggregation, config.train.seed, **model_cfg.options())
        return SingleProcessTrainer(graph, model, lr=config.train.lr, weight_decay=config.train.weight_decay, seed=config.train.seed)
    raise NotImplementedError(f"mode={config.mode!r} is not available in this version; use mode=single")


def summarize(config: JobConfig, graph: Graph, result: FitResult, run_dir: RunDirectory, setup_time_s: float) -> dict[str, Any]:
    final = result.final
    epoch_times = sorted(m.epoch_time_s for m in result.history)
    return {
        "mode": config.mode,
        "dataset": config.dataset.name,
        "graph": {"num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_features": graph.num_features, "num_classes": graph.num_classes, "fingerprint": graph.fingerprint()},
        "model": config.model.name,
        "epochs": len(result.history),
        "final": final.to_dict(),
        "best": {"epoch": result.best_epoch, "val_acc": result.best_val_acc, "test_acc": result.test_acc_at_best_val},
        "timing": {"setup_s": setup_time_s, "train_s": result.wall_time_s, "median_epoch_s": epoch_times[len(epoch_times) // 2]},
        "run_dir": str(run_dir.path),
        "versions": versions(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    final, best = summary["final"], summary["best"]
    pct = lambda v: "-" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    rows = [
        ("mode / model", f"{summary['mode']} / {summary['model']}"),
        ("dataset", f"{summary['dataset']} ({summary['graph']['num_nodes']} nodes, {summary['graph']['num_edges']} edges)"),
        ("epochs", str(summary["epochs"])),
        ("final loss", f"{final['loss']:.4f}"),
        ("final train / val / test", f"{pct(final.get('train_acc'))} / {pct(final.get('val_acc'))} / {pct(final.get('test_acc'))}"),
        ("best val (epoch)", f"{pct(best['val_acc'])} ({best['epoch']})"),
        ("test at best val", pct(best["test_acc"])),
        ("median epoch time", f"{summary['timing']['median_epoch_s'] * 1000:.1f} ms"),
        ("total train time", f"{summary['timing']['train_s']:.1f} s"),
        ("results", summary["run_dir"]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def run_job(config: JobConfig, *, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Runs a whole job and returns its summary (also written to ``<output.dir>/summary.json``)."""
    start = time.perf_counter()
    run_dir = RunDirectory(config.output.dir, force=force)
    config.output.dir = str(run_dir.path)
    run_dir.write_config(config)
    if config.train.num_threads is not None:
        torch.set_num_threads(config.train.num_threads)
    graph = load_dataset(config.dataset.name, **config.dataset.options())
    trainer = make_trainer(config, graph)
    setup_time = time.perf_counter() - start
    result = fit(trainer, config.train.epochs, eval_every=config.train.eval_every, on_epoch=run_dir.log_epoch, progress=progress, description=f"{config.mode}:{config.model.name}")
    summary = summarize(config, graph, result, run_dir, setup_time)
    run_dir.write_summary(summary)
    return summary
