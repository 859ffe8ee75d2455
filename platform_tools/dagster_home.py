"""Where Dagster keeps its runs, event log and cursors for the local commands: the state dir.

`ui` (dagster dev) and `materialize` use the same instance, `<state dir>/dagster`, unless
`DAGSTER_HOME` says otherwise, so a `materialize` after a restart of the local cloud
continues from the windows the last run processed; `make clean` and `up --fresh` empty it
with the rest of the local state.
"""

from __future__ import annotations

import os
from pathlib import Path

from local_cloud import defaults

#: The instance's folder inside a state dir.
DAGSTER_FOLDER = "dagster"
# The instance's settings. A laptop or CI runner offline must not wait on telemetry; the
# UI's first-visit dialog (a newsletter sign-up) opens over the page on every fresh state
# dir and can swallow the first click; and a run launched from the UI waits in the queue
# until the daemon next looks (every 5 s by default): once a second is enough for one
# user. Written when absent, or when it is the file an earlier version wrote; a file the
# user edited is theirs.
_DAGSTER_YAML = """\
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
    "telemetry:\n  enabled: false\n",
    "telemetry:\n  enabled: false\nrun_coordinator:\n  module: dagster.core.run_coordinator\n"
    "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n",
)


def dagster_home(state_dir: Path | str = defaults.STATE_DIR) -> Path:
    """`$DAGSTER_HOME` when set, else `<state_dir>/dagster`, created with its dagster.yaml."""
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured) if configured else (Path(state_dir) / DAGSTER_FOLDER).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in _EARLIER_DAGSTER_YAMLS:
        config.write_text(_DAGSTER_YAML)
    return home
