"""The `pipeline-platform` command line."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="pipeline-platform",
        description="IoT data platform: local cloud, streaming and batch pipeline.",
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0
