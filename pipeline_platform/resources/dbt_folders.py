"""The dbt project's target folder: a folder per command, the parse carried between them.

dagster-dbt gives every dbt command a folder of its own under `target/` (so runs
do not overwrite each other's artifacts). This module seeds each one with the
last command's parse, takes the command's parse back, and removes old folders.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: dbt's record of its last parse: the next command re-parses only the files that changed.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"

#: How many commands' folders (artifacts and debug log, 3-4 MB each) stay for inspection.
KEPT_COMMAND_FOLDERS = 20


def seed_parse_state(project_target: Path, command_target: Path) -> None:
    """Start the command in `command_target` from the project's saved parse, if there is one."""
    saved = project_target / PARTIAL_PARSE_FILE
    seeded = command_target / PARTIAL_PARSE_FILE
    if saved.exists() and not seeded.exists():
        command_target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, seeded)


def keep_parse_state(command_target: Path, project_target: Path) -> None:
    """Make the parse a dbt command left in `command_target` the next command's start.

    dbt discards a saved parse, and parses the whole project again (seconds on 2
    cores), when it was written under another profile: the profile's connection
    values, the DuckDB file's path among them, are part of what dbt compares. The
    last build's own parse matches the next build's profile; it is swapped in
    whole, so a command starting meanwhile reads either file, both valid.
    """
    parsed = command_target / PARTIAL_PARSE_FILE
    if not parsed.exists():
        return
    staged = project_target / f".{PARTIAL_PARSE_FILE}.{os.getpid()}"
    shutil.copyfile(parsed, staged)
    os.replace(staged, project_target / PARTIAL_PARSE_FILE)


def prune_command_folders(
    project_target: Path, prefix: str, keep: int = KEPT_COMMAND_FOLDERS
) -> None:
    """Remove all but the `keep` newest command folders whose names start with `prefix`.

    Every run leaves one; without this the folder grows by 3-4 MB an hour under
    the hourly schedule. A folder another process is still writing is among the
    newest, so it is never the one removed.
    """
    folders = [path for path in project_target.glob(f"{prefix}*") if path.is_dir()]
    folders.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)
