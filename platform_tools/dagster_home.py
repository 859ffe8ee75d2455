"""Where Dagster keeps its runs, event log and cursors for the local commands: the state dir.

`ui` (dagster dev) and `materialize` use the same instance, `<state dir>/dagster`, unless
`DAGSTER_HOME` says otherwise, so a `materialize` after a restart of the local cloud
continues from the windows the last run processed; `make clean` and `up --fresh` empty it
with the rest of the local state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from local_cloud import defaults
from platform_tools.dagster_instance import local_instance, render

#: The instance's folder inside a state dir.
DAGSTER_FOLDER = "dagster"
# The instance's settings come from `dagster_instance`. The file is written when absent, or
# when it is a file this or an earlier version wrote (for this folder or another); a file
# the user edited is theirs.
#: What the version before `dagster_instance` wrote, `base_dir` quoted as JSON.
_PREVIOUS_DAGSTER_YAML = """\
storage:
  custom:
    module: platform_tools.dagster_storage
    class: LocalSqliteStorage
    config:
      base_dir: {base_dir}
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""
_EARLIER_DAGSTER_YAMLS = (
    "telemetry:\n  enabled: false\nnux:\n  enabled: false\nrun_coordinator:\n"
    "  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n  config:\n"
    "    dequeue_interval_seconds: 1\n",
    "telemetry:\n  enabled: false\n",
    "telemetry:\n  enabled: false\nrun_coordinator:\n  module: dagster.core.run_coordinator\n"
    "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n",
)


def _dagster_yaml(home: Path) -> str:
    return render(local_instance(home))


def _written_here(text: str) -> bool:
    if text in _EARLIER_DAGSTER_YAMLS:
        return True
    named = re.search(r"^      base_dir: (.+)$", text, re.MULTILINE)
    if named is None:
        return False
    if text == _PREVIOUS_DAGSTER_YAML.format(base_dir=named.group(1)):
        return True
    try:
        written_for = yaml.safe_load(text)["storage"]["custom"]["config"]["base_dir"]
    except (yaml.YAMLError, KeyError, TypeError):
        return False
    return text == _dagster_yaml(Path(written_for))


def dagster_home(state_dir: Path | str = defaults.STATE_DIR) -> Path:
    """`$DAGSTER_HOME` when set, else `<state_dir>/dagster`, created with its dagster.yaml."""
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured) if configured else (Path(state_dir) / DAGSTER_FOLDER).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = _dagster_yaml(home)
    if not config.exists() or (_written_here(config.read_text()) and config.read_text() != wanted):
        config.write_text(wanted)
    return home
