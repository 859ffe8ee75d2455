"""The rendered templates match the committed snapshots.

A change to the infrastructure shows up as a reviewable diff of
`tests/cloudformation/snapshots/*.json`. After an intended change, regenerate:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/cloudformation/test_snapshots.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloudformation.naming import Naming
from cloudformation.stacks import STACKS, build_templates, render

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("purpose", list(STACKS))
def test_template_matches_snapshot(purpose: str) -> None:
    """GIVEN the default deployment WHEN its template renders THEN it equals the snapshot."""
    rendered = render(build_templates(Naming(), (purpose,))[purpose])
    snapshot = SNAPSHOTS / f"{purpose}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(rendered, encoding="utf-8")
    assert snapshot.is_file(), f"no snapshot {snapshot}; run with UPDATE_SNAPSHOTS=1"
    assert rendered == snapshot.read_text(encoding="utf-8"), (
        f"{purpose} template differs from {snapshot}; if intended, run with UPDATE_SNAPSHOTS=1"
    )


def test_rendering_is_stable() -> None:
    """GIVEN two builds of the same deployment THEN they render byte for byte the same."""
    first = {p: render(t) for p, t in build_templates(Naming()).items()}
    second = {p: render(t) for p, t in build_templates(Naming()).items()}
    assert first == second


def test_names_follow_the_deployment() -> None:
    """GIVEN another env and region THEN every resource name in the templates follows them."""
    prod = {p: render(t) for p, t in build_templates(Naming("prod", "us-east-1")).items()}
    for purpose, text in prod.items():
        assert "-dev-" not in text and "apse2" not in text, purpose
        assert "-prod-use1-" in text, purpose
