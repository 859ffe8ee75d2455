"""The lock files hold what `pyproject.toml` asks for: every install makes what was tested.

`make` installs with `uv sync --locked`, which refuses a lock that does not match; these
tests say the same earlier, in the test run, for both locks (the project's and
checkov's), and show that the check tells a stale lock apart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The projects with a lock, by folder: the platform, and checkov (a tool of its own).
LOCKED = [ROOT, ROOT / "tools" / "checkov"]


def _uv() -> str:
    """The uv `make` bootstrapped (its version is the Makefile's `UV_VERSION`)."""
    path = ROOT / ".venv-uv" / "bin" / "uv"
    found = str(path) if path.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: run the tests with `make test`, which installs it")
    return found


def _check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_uv(), "lock", "--check", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"},
    )


@pytest.mark.parametrize("project", LOCKED, ids=["project", "checkov"])
def test_the_lock_matches_pyproject(project):
    result = _check(project)
    assert result.returncode == 0, (
        f"{project / 'uv.lock'} does not match {project / 'pyproject.toml'}: run `make lock` "
        f"(after `make test-latest`).\n{result.stderr}"
    )


def test_a_lock_that_no_longer_matches_is_found(tmp_path):
    """GIVEN a copy of the project whose pyproject.toml no longer asks for a package the
    lock holds
    WHEN the lock is checked
    THEN the check fails and says the lock needs updating."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '    "paho-mqtt>=2.1",\n' in text
    pyproject.write_text(text.replace('    "paho-mqtt>=2.1",\n', ""))
    result = _check(tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr
