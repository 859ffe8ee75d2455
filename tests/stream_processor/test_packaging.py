"""The Lambda package ships alone: importing it must pull in nothing else of the repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "pipeline_platform",
    "cloudformation",
    "benchmarks",
    "tests",
    "dagster",
    "dagster_dbt",
    "dbt",
    "pandas",
    "pyarrow",
    "duckdb",
    "moto",
    "troposphere",
    "aws_lambda_powertools",
)


def test_importing_the_handler_loads_only_stdlib_boto3_and_botocore() -> None:
    """GIVEN a fresh interpreter
    WHEN it imports stream_processor.handler
    THEN no module of the rest of the repository or its heavy dependencies is loaded.
    """
    script = (
        "import json, sys; import stream_processor.handler; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = set(json.loads(result.stdout))

    assert "boto3" in loaded
    assert loaded.isdisjoint(FORBIDDEN), loaded & set(FORBIDDEN)
