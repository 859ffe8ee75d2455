"""Command line for the stacks: synth, validate, deploy, destroy.

`python -m cloudformation <command>`; the main `pipeline-platform stack ...`
command calls the same functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cloudformation.naming import DEFAULT_ENV, DEFAULT_REGION, Naming
from cloudformation.stacks import STACKS, synth

DEFAULT_OUT = Path("build/cloudformation")


def validate(directory: Path | None, naming: Naming) -> list[str]:
    """cfn-lint findings for the templates in `directory` (synthesised afresh when None)."""
    from cloudformation.lint import lint_findings  # cfn-lint is a development dependency

    if directory is None:
        with tempfile.TemporaryDirectory() as tmp:
            return [f for p in synth(naming, Path(tmp)) for f in lint_findings(p, [naming.region])]
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no templates (*.json) in {directory}")
    return [f for p in paths for f in lint_findings(p, [naming.region])]


def parse_parameters(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """`stack.Key=Value` strings to `{stack: {Key: Value}}`; a bare `Key=Value` is ambiguous."""
    result: dict[str, dict[str, str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        stack, dot, key = name.partition(".")
        if not sep or not dot or stack not in STACKS or not key:
            raise ValueError(
                f"parameter {item!r} must look like STACK.Key=Value with STACK one of "
                f"{list(STACKS)}"
            )
        result.setdefault(stack, {})[key] = value
    return result


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m cloudformation`."""
    parser = argparse.ArgumentParser(prog="python -m cloudformation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_naming(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--env", default=DEFAULT_ENV, help="environment (default %(default)s)")
        p.add_argument("--region", default=DEFAULT_REGION, help="AWS region (default %(default)s)")
        return p

    synth_cmd = with_naming(commands.add_parser("synth", help="write one JSON template per stack"))
    synth_cmd.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")

    validate_cmd = with_naming(commands.add_parser("validate", help="run cfn-lint on templates"))
    validate_cmd.add_argument(
        "--dir", type=Path, default=None, help="templates to lint (default: synthesise afresh)"
    )

    stack_choices = list(STACKS)
    deploy_cmd = with_naming(commands.add_parser("deploy", help="create or update the stacks"))
    deploy_cmd.add_argument("--stack", action="append", choices=stack_choices, dest="stacks")
    deploy_cmd.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="STACK.Key=Value",
        help="template parameter, e.g. analytics.SubnetIds=subnet-1,subnet-2",
    )

    destroy_cmd = with_naming(commands.add_parser("destroy", help="delete the stacks"))
    destroy_cmd.add_argument("--stack", action="append", choices=stack_choices, dest="stacks")
    destroy_cmd.add_argument(
        "--empty-buckets",
        action="store_true",
        help="empty the stacks' buckets (every version) and delete the artifact bucket first",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is non-zero on findings or failure."""
    args = build_parser().parse_args(argv)
    naming = Naming(args.env, args.region)
    if args.command == "synth":
        for path in synth(naming, args.out):
            print(path)
        return 0
    if args.command == "validate":
        findings = validate(args.dir, naming)
        for finding in findings:
            print(finding)
        print(f"{len(findings)} finding(s)", file=sys.stderr)
        return 1 if findings else 0

    from cloudformation.deploy import DeployError, deploy, destroy

    stacks = tuple(args.stacks) if args.stacks else None
    try:
        if args.command == "deploy":
            outputs = deploy(
                naming,
                stacks=stacks,
                parameters=parse_parameters(args.param),
                log=lambda line: print(line, file=sys.stderr),
            )
            print(json.dumps(outputs, indent=2, sort_keys=True))
        else:
            for name in destroy(
                naming,
                stacks=stacks,
                empty_buckets=args.empty_buckets,
                log=lambda line: print(line, file=sys.stderr),
            ):
                print(f"deleted {name}")
    except (DeployError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
