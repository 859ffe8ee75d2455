"""The dbt project for a target, and the dbt CLI resource that runs it."""

from __future__ import annotations

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


#: What dbt writes into the project folder; everything else there is a source of the manifest.
_DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})


def _newest_source_change(project_dir: Path) -> float:
    """The latest modification time of the files dbt parses (models, macros, tests, YAML)."""
    newest = 0.0
    for path in project_dir.rglob("*"):
        relative = path.relative_to(project_dir).parts
        if relative[0] in _DBT_OUTPUT_DIRS or relative[0].startswith("."):
            continue
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def manifest_is_stale(manifest: Path, project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """Whether the manifest is missing or older than a file of the project it describes."""
    return not manifest.exists() or manifest.stat().st_mtime < _newest_source_change(project_dir)


@cache
def dbt_project(target: str) -> DbtProject:
    """The dbt project for `target`, its manifest parsed again when a model changed.

    The manifest is parsed with the dbt beside this interpreter rather than
    dagster-dbt's preparer, which looks for `dbt` on PATH only. Under `dagster dev`
    models change while it runs, so a reload picks up an edited model; but only
    when one changed: every run's own process and every step's loads the code location
    too, and a `dbt parse` there would cost seconds before the run does anything.
    """
    project = DbtProject(project_dir=DBT_PROJECT_DIR, target=target)
    if manifest_is_stale(Path(project.manifest_path)):
        DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path
        ).wait()
    return project


def dbt_resource(target: str) -> DbtCliResource:
    """The dbt CLI for the project's `target` (`local` DuckDB or `redshift`)."""
    return DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable(), target=target
    )
