"""The dbt project for a target, and the dbt CLI resource that runs it."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject
from dagster_dbt.asset_utils import (
    DBT_INDIRECT_SELECTION_ENV,
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from packaging import version

from pipeline_platform.env_override import overridden
from pipeline_platform.environment import ENV_WAREHOUSE_PATH, PROJECT_ROOT, warehouse_path
from pipeline_platform.resources.dbt_in_process import InProcessDbtInvocation, preload

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_redshift"


def _beside_interpreter() -> Path:
    return Path(sys.executable).parent / "dbt"


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, so an unactivated virtualenv works too."""
    beside = _beside_interpreter()
    return str(beside) if beside.exists() else "dbt"


class PlatformDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource; the runs' builds go through `in_process` (dbt's Python
    API in the run's process, see `dbt_in_process`), and `cli()` (a dbt process, used to
    parse the project) skips two steps it takes before every command that this project
    does not need (measured: 3-4 s of a command on 2 cores).

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

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Start importing dbt while the run's first steps execute (see `in_process`)."""
        super().setup_for_execution(context)
        preload(self.adapter_type)

    @property
    def adapter_type(self) -> str:
        """The dbt adapter the target uses (the `type` of its output in `profiles.yml`; a
        target added there under its adapter's name needs no entry here)."""
        return ADAPTER_TYPES.get(self.target or "local", self.target or "")

    def in_process(
        self,
        args: Sequence[str],
        *,
        context: dg.AssetExecutionContext,
        translator: DagsterDbtTranslator,
    ) -> tuple[InProcessDbtInvocation, dict[str, str]]:
        """`args` for dbt's Python API in this process, selected as `cli()` would select them.

        Returns the invocation and the environment it needs (dagster-dbt passes
        dbt's indirect selection of tests in it). The selection of the context's
        assets and checks, the per-invocation target folder and the profile are
        dagster-dbt's own; only the process differs (see `dbt_in_process`).
        """
        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest={},
            dagster_dbt_translator=translator,
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        target_path = self._get_unique_target_path(context=context)
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        dbt_args = [
            # Plain text in the step's captured output (the UI's stdout view, batch.log).
            "--no-use-colors",
            *self.global_config_flags,
            *cleaned,
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            self.profiles_dir or str(project_dir),
            *(["--profile", self.profile] if self.profile else []),
            *(["--target", self.target] if self.target else []),
            "--target-path",
            str(target_path),
            "--log-path",
            str(target_path),
            "--no-send-anonymous-usage-stats",
            *params.selection_args,
        ]
        environment = (
            {DBT_INDIRECT_SELECTION_ENV: params.indirect_selection}
            if params.indirect_selection
            else {}
        )
        invocation = InProcessDbtInvocation(
            args=dbt_args,
            target_path=target_path,
            manifest=params.manifest,
            translator=params.dagster_dbt_translator,
            context=context,
            project=params.dbt_project,
            adapter_type=self.adapter_type,
            project_target=project_dir
            / (params.dbt_project.target_path if params.dbt_project else "target"),
        )
        return invocation, environment


#: The adapter behind each target of `dbt_redshift/profiles.yml`.
ADAPTER_TYPES = {"local": "duckdb", "redshift": "redshift"}


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


def dbt_resource(target: str) -> PlatformDbtCliResource:
    """The dbt CLI for the project's `target` (`local` DuckDB or `redshift`)."""
    return PlatformDbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable(), target=target
    )
