"""The dbt project, its target, and the dbt command the assets run."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from pipeline_platform.environment import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_redshift"


@cache
def dbt_project(target: str) -> DbtProject:
    """The dbt project for `target`, with a manifest parsed if there is none yet."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, target=target)
    project.prepare_if_dev()
    if not Path(project.manifest_path).exists():
        project.preparer.prepare(project)
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
