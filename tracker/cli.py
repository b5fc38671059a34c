"""The `tracker` command line. Errors print one line on stderr and exit non-zero, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from tracker import __version__
from tracker.errors import TrackerError
from tracker.urls import ENV_URL, mask_password

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="Record and explore optimisation experiments.")
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    parser.add_argument(
        "--url", default=os.environ.get(ENV_URL), help=f"store URL or path (default: ${ENV_URL}, else ./experiments.db)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tracker` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except TrackerError as exc:
        print(f"tracker: error: {mask_password(str(exc))}", file=sys.stderr)  # noqa: T201
        return 1
    except OSError as exc:
        print(f"tracker: error: {mask_password(str(exc))}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        print("tracker: interrupted", file=sys.stderr)  # noqa: T201
        return 130


if __name__ == "__main__":
    sys.exit(main())
