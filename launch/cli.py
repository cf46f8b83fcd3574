"""The `gnndist` command: one subcommand per module, each with ``add_parser`` and ``run``.

One grammar for every subcommand that takes a job: ``gnndist COMMAND [job.yaml] [section.key=value ...]``
with options anywhere between them (``gnndist train job.yaml --no-progress train.epochs=2``).
"""
from __future__ import annotations

import argparse
import importlib
import io
import os
import select
import sys

SUBCOMMANDS = {
    "train": "train_cmd",
    "partition": "partition_cmd",
    "convert": "convert_cmd",
    "report": "report_cmd",
    "predict": "predict_cmd",
    "plan": "plan_cmd",
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


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parses ``argv`` with options and positionals in any order.

    argparse alone fills a subcommand's positionals from the first run of them only, so
    ``train job.yaml --force a=1`` would leave ``a=1`` unparsed; the subcommand's own parser re-reads
    its arguments with ``parse_intermixed_args``. A benchmark that parses its own flags gets them
    unparsed (``args.passthrough``).
    """
    args, extras = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        args.passthrough = extras  # flags a benchmark module parses itself (gnndist bench fullgraph ...)
        return args
    if extras:
        command_parser = _subparsers(parser).choices[args.command]
        if _subparsers(command_parser) is not None:  # bench: sub-subcommands take no positionals to intermix
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        rest = argv[argv.index(args.command) + 1:]
        args = command_parser.parse_intermixed_args(rest, argparse.Namespace(debug=args.debug, command=args.command))
    args.passthrough = []
    return args


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    """The parser's subcommands action (argparse has no public accessor for it), or None."""
    return next((action for action in parser._actions if isinstance(action, argparse._SubParsersAction)), None)


def split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """Splits positionals into ``section.key=value`` overrides and the rest, each in the order given."""
    overrides = [item for item in items if "=" in item]
    return [item for item in items if "=" not in item], overrides


def main(argv: list[str] | None = None) -> int:
    """Entry point: exits non-zero with a one-line reason on any error (``--debug`` for the traceback)."""
    # The Ray bootstrap, before anything imports Ray: an embedded Ray then keeps 127.0.0.1 as its node address
    # and listens on loopback only (gnndist.runtime.cluster.LOCAL_ONLY_ENV; importing it would import Ray first).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    parser = build_parser()
    args = parse_args(parser, list(sys.argv[1:] if argv is None else argv))
    module = importlib.import_module(f"gnndist.launch.{SUBCOMMANDS[args.command]}")
    try:
        code = module.run(args)
        sys.stdout.flush()  # a reader that went away (`gnndist report RUN | head`) shows here at the latest
        return code
    except KeyboardInterrupt as interrupt:
        print("gnndist: interrupted" + (f"; {interrupt}" if str(interrupt) else ""), file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, BrokenPipeError) and _stdout_reader_gone():
            # `| head` took what it wanted: not an error. Point stdout at /dev/null so that
            # Python's final flush of the rest does not fail again on the way out.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if args.debug:
            raise
        print(f"gnndist {args.command}: error: {error_text(error)}", file=sys.stderr)
        return 1


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports POLLERR on such a pipe), as
    opposed to a broken pipe somewhere else (a socket), which stays an error."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def error_text(error: BaseException) -> str:
    """The message of ``error`` as a user should read it: ``str(KeyError(...))`` would add quotes."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error)


if __name__ == "__main__":
    sys.exit(main())
