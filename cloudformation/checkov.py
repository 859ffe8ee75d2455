"""checkov, the policy scanner, run from its own virtual environment.

checkov pins many libraries that clash with the project's, so it lives in
`.venv-checkov` (made by `make checkov`) and is called as a separate program.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def skip(check_id: str, comment: str) -> dict[str, str]:
    """A checkov skip entry for a resource's `Metadata`; every skip says why it is safe."""
    if not comment.strip():
        raise ValueError(f"skipping {check_id} needs a written reason")
    return {"id": check_id, "comment": comment}


def checkov_available(executable: Path = CHECKOV) -> bool:
    """Whether the checkov virtual environment has been made."""
    return executable.is_file()


def scan(directory: Path, executable: Path = CHECKOV) -> dict[str, list[dict[str, Any]]]:
    """Scan the templates in `directory`: `{"failed": [...], "skipped": [...]}` checks.

    Raises RuntimeError when checkov itself fails rather than reporting findings.
    """
    result = subprocess.run(
        [
            str(executable),
            "--directory",
            str(directory),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    reports = json.loads(result.stdout)
    if isinstance(reports, dict):
        reports = [reports]
    found: dict[str, list[dict[str, Any]]] = {"failed": [], "skipped": []}
    for report in reports:
        results = report.get("results", {}) if isinstance(report, dict) else {}
        for outcome in found:
            for check in results.get(f"{outcome}_checks", []):
                found[outcome].append(
                    {
                        "check_id": check["check_id"],
                        "check_name": check.get("check_name"),
                        "resource": check.get("resource"),
                        "file": check.get("file_path"),
                    }
                )
    return found


def failed_checks(directory: Path, executable: Path = CHECKOV) -> list[dict[str, Any]]:
    """Every failed check for the templates in `directory` (empty when clean)."""
    return scan(directory, executable)["failed"]
