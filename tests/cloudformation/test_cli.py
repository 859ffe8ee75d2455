"""`python -m cloudformation`: synth writes the templates, validate lints them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cloudformation.cli import main, parse_parameters


def test_synth_writes_one_template_per_stack_for_the_chosen_deployment(tmp_path, capsys):
    """GIVEN --env/--region WHEN synth runs THEN one template per stack names them."""
    assert main(["synth", "--env", "qa", "--region", "eu-west-1", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "analytics.json",
        "orchestration.json",
        "streaming.json",
    ]
    streaming = json.loads((tmp_path / "streaming.json").read_text())
    table = streaming["Resources"]["ReadingsTable"]["Properties"]["TableName"]
    assert table == "dynamodb-qa-euw1-iotdata-01"
    assert str(tmp_path / "streaming.json") in capsys.readouterr().out


def test_validate_passes_clean_templates_and_fails_on_findings(tmp_path):
    """GIVEN synthesised templates THEN validate exits 0; GIVEN a broken one THEN non-zero."""
    assert main(["synth", "--out", str(tmp_path)]) == 0
    assert main(["validate", "--dir", str(tmp_path)]) == 0
    broken = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"Nope": 1}}}}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert main(["validate", "--dir", str(tmp_path)]) == 1


def test_module_entry_point_runs(tmp_path):
    """GIVEN `python -m cloudformation synth` THEN it exits 0 and writes the templates."""
    result = subprocess.run(
        [sys.executable, "-m", "cloudformation", "synth", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "analytics.json").is_file()


def test_parameters_are_addressed_to_a_stack():
    """GIVEN STACK.Key=Value items THEN they group by stack; a bare Key=Value is refused."""
    assert parse_parameters(
        ["analytics.SubnetIds=subnet-1,subnet-2", "streaming.ShardCount=2"]
    ) == {
        "analytics": {"SubnetIds": "subnet-1,subnet-2"},
        "streaming": {"ShardCount": "2"},
    }
    with pytest.raises(ValueError, match=r"STACK\.Key=Value"):
        parse_parameters(["ShardCount=2"])
