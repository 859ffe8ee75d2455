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
# Written once: a laptop or CI runner offline must not wait on telemetry.
_DAGSTER_YAML = "telemetry:\n  enabled: false\n"


def dagster_home(state_dir: Path | str = defaults.STATE_DIR) -> Path:
    """`$DAGSTER_HOME` when set, else `<state_dir>/dagster`, created with its dagster.yaml."""
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured) if configured else (Path(state_dir) / DAGSTER_FOLDER).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_DAGSTER_YAML)
    return home
