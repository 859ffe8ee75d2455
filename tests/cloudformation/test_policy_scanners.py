"""cfn-lint and checkov report nothing on the rendered templates.

checkov runs from `.venv-checkov` (made by `make checkov`); without that venv the
checkov test is skipped and says how to make it.
"""

from __future__ import annotations

import json

import pytest

from cloudformation.checkov import checkov_available, scan
from cloudformation.lint import lint_findings
from cloudformation.stacks import STACKS

needs_checkov = pytest.mark.skipif(
    not checkov_available(), reason="checkov venv missing: run `make checkov` to create it"
)


@pytest.mark.parametrize("purpose", list(STACKS))
def test_cfn_lint_reports_nothing(synth_dir, naming, purpose):
    """GIVEN a synthesised template WHEN cfn-lint runs THEN no error, warning or info."""
    assert lint_findings(synth_dir / f"{purpose}.json", [naming.region]) == []


@needs_checkov
def test_checkov_reports_no_failed_check_and_every_skip_is_used(synth_dir, templates):
    """GIVEN both templates WHEN checkov scans them THEN no check fails, and every skip in
    the templates' Metadata matches a check checkov would otherwise run (no stale skips)."""
    found = scan(synth_dir)
    assert found["failed"] == []
    declared = {
        (f"{resource['Type']}.{logical_id}", entry["id"])
        for template in templates.values()
        for logical_id, resource in template["Resources"].items()
        for entry in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    skipped = {(check["resource"], check["check_id"]) for check in found["skipped"]}
    assert declared == skipped


def test_every_checkov_skip_gives_a_reason(templates):
    """GIVEN every skipped check in resource Metadata THEN it carries a written reason."""
    skips = [
        (stack, logical_id, entry)
        for stack, template in templates.items()
        for logical_id, resource in template["Resources"].items()
        for entry in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "expected the documented skips"
    for stack, logical_id, entry in skips:
        assert entry["id"].startswith("CKV"), (stack, logical_id)
        assert len(entry["comment"]) > 30, (stack, logical_id, entry["id"])


def test_a_finding_is_reported(tmp_path, naming):
    """GIVEN a template with a broken reference WHEN linted THEN cfn-lint reports it."""
    broken = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Nope"}}}
        }
    }
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert any("Nope" in finding for finding in lint_findings(path, [naming.region]))
