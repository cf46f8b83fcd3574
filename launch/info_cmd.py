"""`gnndist info`: versions and what this machine can run."""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("info", help="print versions and capabilities (torch, PyG, Ray, DGL, CUDA, METIS)")


def capabilities() -> list[tuple[str, str]]:
    import torch

    from gnndist.launch.job import versions
    from gnndist.typing import dgl_status, module_status

    rows = list(versions().items())
    dgl_ok, dgl_text = dgl_status()
    rows.append(("dgl", dgl_text if dgl_ok else f"not usable ({dgl_text})"))
    for module in ("pymetis", "kahip", "kaminpar", "ogb", "torch_sparse", "pyg_lib"):
        ok, text = module_status(module)
        rows.append((module, text if ok else "not installed"))
    if torch.cuda.is_available():
        devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        rows.append(("cuda", f"{torch.version.cuda}: {devices}"))
    else:
        rows.append(("cuda", "no CUDA device"))
    rows.append(("cpu threads", str(torch.get_num_threads())))
    return rows


def run(args: argparse.Namespace) -> int:
    rows = capabilities()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0
