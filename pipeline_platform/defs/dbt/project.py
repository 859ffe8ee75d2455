"""The dbt project, its target, and the dbt command the assets run."""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from pipeline_platform.environment import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_redshift"


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, so an unactivated virtualenv works too."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


@cache
def dbt_project(target: str) -> DbtProject:
    """The dbt project for `target`, with a manifest parsed if there is none yet.

    The manifest is parsed with the dbt beside this interpreter rather than
    dagster-dbt's preparer, which looks for `dbt` on PATH only.
    """
    project = DbtProject(project_dir=DBT_PROJECT_DIR, target=target)
    # Under `dagster dev` models change while it runs: parse on every load, as
    # DbtProject.prepare_if_dev would.
    if os.environ.get("DAGSTER_IS_DEV_CLI") or not Path(project.manifest_path).exists():
        DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path
        ).wait()
    return project


def build_args(partition_range: tuple[str, str] | None = None) -> list[str]:
    """`dbt build` arguments; a partition range is passed to dbt as vars for the log only."""
    args = ["build"]
    if partition_range:
        args += [
            "--vars",
            f'{{"batch_start": "{partition_range[0]}", "batch_end": "{partition_range[1]}"}}',
        ]
    return args


class DbtResource(DbtCliResource):
    """The dbt CLI with the environment the profile reads (warehouse path, Redshift endpoint)."""

    env_overrides: dict[str, str] = {}
