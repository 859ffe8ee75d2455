"""A one-step job: a code location the run launcher tests launch runs of."""

import dagster as dg


@dg.op
def say_hello() -> str:
    """The job's one step."""
    return "hello"


@dg.job
def tiny() -> None:
    """One step, nothing else."""
    say_hello()


defs = dg.Definitions(jobs=[tiny])
