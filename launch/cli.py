"""The `gnndist` command: one subcommand per module, each with ``add_parser`` and ``run``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

SUBCOMMANDS = {
    "train": "train_cmd",
    "partition": "partition_cmd",
    "report": "report_cmd",
    "bench": "bench_cmd",
    "info": "info_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnndist", description="Distributed GNN training on Ray.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS.values():
        importlib.import_module(f"gnndist.launch.{module}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: exits non-zero with a one-line reason on any error (``--debug`` for the traceback)."""
    # The Ray bootstrap, before anything imports Ray: an embedded Ray then keeps 127.0.0.1 as its node address
    # and listens on loopback only (gnndist.runtime.cluster.LOCAL_ONLY_ENV; importing it would import Ray first).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    parser = build_parser()
    args, passthrough = parser.parse_known_args(argv)
    if passthrough and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    args.passthrough = passthrough  # flags a benchmark module parses itself (gnndist bench fullgraph ...)
    module = importlib.import_module(f"gnndist.launch.{SUBCOMMANDS[args.command]}")
    try:
        return module.run(args)
    except KeyboardInterrupt as interrupt:
        print("gnndist: interrupted" + (f"; {interrupt}" if str(interrupt) else ""), file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"gnndist {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
