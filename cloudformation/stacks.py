"""The project's stacks: which templates exist, how they render and where they are written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from troposphere import Template

from cloudformation.analytics import build_analytics
from cloudformation.naming import ANALYTICS_STACK, ORCHESTRATION_STACK, STREAMING_STACK, Naming
from cloudformation.orchestration import build_orchestration
from cloudformation.streaming import build_streaming

#: Stack purposes in deployment order (analytics reads streaming's outputs, orchestration
#: both).
STACKS: dict[str, Callable[[Naming], Template]] = {
    STREAMING_STACK: build_streaming,
    ANALYTICS_STACK: build_analytics,
    ORCHESTRATION_STACK: build_orchestration,
}


def build_templates(naming: Naming, stacks: tuple[str, ...] | None = None) -> dict[str, Template]:
    """Build the templates of `stacks` (default: all), keyed by stack purpose."""
    wanted = tuple(STACKS) if stacks is None else stacks
    unknown = [s for s in wanted if s not in STACKS]
    if unknown:
        raise ValueError(f"unknown stack(s) {unknown}; known: {list(STACKS)}")
    return {purpose: STACKS[purpose](naming) for purpose in wanted}


def render(template: Template) -> str:
    """The template as stable, human-readable JSON (sorted keys, two-space indent)."""
    return json.dumps(template.to_dict(), indent=2, sort_keys=True) + "\n"


def render_compact(template: Template) -> str:
    """The template as compact JSON, for the API's 51,200-byte TemplateBody limit."""
    return json.dumps(template.to_dict(), separators=(",", ":"), sort_keys=True)


def synth(naming: Naming, out_dir: Path) -> list[Path]:
    """Write `<purpose>.json` for every stack into `out_dir`; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for purpose, template in build_templates(naming).items():
        path = out_dir / f"{purpose}.json"
        path.write_text(render(template), encoding="utf-8")
        paths.append(path)
    return paths
