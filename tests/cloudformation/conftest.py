"""Fixtures for the template tests: the rendered templates, as dicts and as files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudformation.naming import Naming
from cloudformation.stacks import build_templates, render, synth


@pytest.fixture(scope="session")
def naming() -> Naming:
    """The default deployment: dev in ap-southeast-2."""
    return Naming()


@pytest.fixture(scope="session")
def templates(naming: Naming) -> dict[str, dict]:
    """Every stack's template as CloudFormation JSON, parsed back into dicts."""
    return {purpose: json.loads(render(t)) for purpose, t in build_templates(naming).items()}


@pytest.fixture(scope="session")
def streaming(templates: dict[str, dict]) -> dict:
    """The streaming stack's template."""
    return templates["streaming"]


@pytest.fixture(scope="session")
def analytics(templates: dict[str, dict]) -> dict:
    """The analytics stack's template."""
    return templates["analytics"]


@pytest.fixture(scope="session")
def orchestration(templates: dict[str, dict]) -> dict:
    """The orchestration stack's template."""
    return templates["orchestration"]


@pytest.fixture(scope="session")
def synth_dir(naming: Naming, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding every stack's `<purpose>.json`, written by `synth`."""
    out = tmp_path_factory.mktemp("cloudformation")
    synth(naming, out)
    return out


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    """The template's resources of one type, by logical id."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def one(template: dict, resource_type: str) -> dict:
    """The only resource of `resource_type` in the template."""
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))
