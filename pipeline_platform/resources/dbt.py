"""The dbt project for a target, and the dbt CLI resource that runs it."""

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


def dbt_resource(target: str) -> DbtCliResource:
    """The dbt CLI for the project's `target` (`local` DuckDB or `redshift`)."""
    return DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable(), target=target
    )
