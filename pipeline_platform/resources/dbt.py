"""The dbt project for a target, and the dbt CLI resource that runs it."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from pipeline_platform.env_override import overridden
from pipeline_platform.environment import ENV_WAREHOUSE_PATH, PROJECT_ROOT, warehouse_path

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_redshift"


def _beside_interpreter() -> Path:
    return Path(sys.executable).parent / "dbt"


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, so an unactivated virtualenv works too."""
    beside = _beside_interpreter()
    return str(beside) if beside.exists() else "dbt"


class PlatformDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI without the two steps it takes before every command that
    this project does not need (measured: 3-4 s of every run's dbt step on 2 cores).

    - dagster-dbt learns the dbt version by running `dbt --version` once per resource,
      that is once per run. That is a second dbt process start (about 2 s of imports)
      and four requests to PyPI for the latest versions (up to 1 s each when offline).
      The dbt beside this interpreter is the dbt-core installed in this environment,
      whose version the package metadata gives; any other executable is still asked.
    - It builds a dbt adapter in this process (profile, project, every macro of
      dbt-core: about 1 s), which it only uses to fetch row counts or column metadata
      after the build (`.fetch_row_counts()`, `.fetch_column_metadata()`). The assets
      here call neither; add them back together with the adapter.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) == _beside_interpreter():
            return version.parse(metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


#: dbt's record of its last parse: the next command re-parses only the files that changed.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"

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
        # Under the profile the runs use, so that the first run's dbt can start from this
        # parse (see `keep_parse_state`).
        with overridden(_run_profile_environment(target)):
            PlatformDbtCliResource(
                project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable(), target=target
            ).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


def _run_profile_environment(target: str) -> Mapping[str, str]:
    # What the local warehouse resource gives its runs' dbt; Redshift's host is only known
    # when a run starts.
    return {ENV_WAREHOUSE_PATH: warehouse_path()} if target == "local" else {}


def keep_parse_state(invocation_target: Path, project: DbtProject) -> None:
    """Make the parse a dbt command left in `invocation_target` the next command's start.

    dagster-dbt gives every command its own target folder (so runs do not overwrite each
    other's artifacts) and seeds it with the project's `target/partial_parse.msgpack`.
    dbt discards that seed, and parses the whole project again (seconds on 2 cores), when
    it was written under another profile: the profile's connection values, the DuckDB
    file's path among them, are part of what dbt compares. The last build's own parse
    matches the next build's profile; it is swapped in whole, so a command starting
    meanwhile reads either file, both valid.
    """
    parsed = invocation_target / PARTIAL_PARSE_FILE
    if not parsed.exists():
        return
    target = Path(project.project_dir) / project.target_path
    staged = target / f".{PARTIAL_PARSE_FILE}.{os.getpid()}"
    shutil.copyfile(parsed, staged)
    os.replace(staged, target / PARTIAL_PARSE_FILE)


def dbt_resource(target: str) -> PlatformDbtCliResource:
    """The dbt CLI for the project's `target` (`local` DuckDB or `redshift`)."""
    return PlatformDbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable(), target=target
    )
