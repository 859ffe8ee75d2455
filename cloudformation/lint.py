"""cfn-lint over rendered templates."""

from __future__ import annotations

from pathlib import Path

from cfnlint.api import lint


def lint_findings(path: Path, regions: list[str]) -> list[str]:
    """Every cfn-lint finding (error, warning or informational) for the template at `path`."""
    matches = lint(path.read_text(encoding="utf-8"), regions=regions)
    return [f"{path.name}:{m.linenumber}: {m.rule.id} {m.message}" for m in matches]
