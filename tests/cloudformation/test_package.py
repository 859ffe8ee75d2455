"""The Lambda package is reproducible and holds only the stream processor."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from cloudformation.package import FIXED_DATE_TIME, build_package


def _fake_source(root: Path) -> Path:
    (root / "stream_processor" / "__pycache__").mkdir(parents=True)
    (root / "stream_processor" / "__init__.py").write_text('"""pkg"""\n')
    (root / "stream_processor" / "handler.py").write_text("def handler(e, c):\n    return {}\n")
    (root / "stream_processor" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    (root / "pipeline_platform").mkdir()
    (root / "pipeline_platform" / "__init__.py").write_text("")
    return root


def test_same_source_gives_the_same_bytes_and_key(tmp_path):
    """GIVEN unchanged source WHEN packaged twice (files touched between) THEN same sha256."""
    root = _fake_source(tmp_path)
    first = build_package(root)
    (root / "stream_processor" / "handler.py").touch()
    second = build_package(root)
    assert first.data == second.data
    assert first.s3_key == second.s3_key == f"stream_processor/{first.sha256}.zip"


def test_a_code_change_changes_the_key(tmp_path):
    """GIVEN a changed handler WHEN packaged THEN the S3 key changes, so the function redeploys."""
    root = _fake_source(tmp_path)
    before = build_package(root)
    (root / "stream_processor" / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    assert build_package(root).s3_key != before.s3_key


def test_zip_holds_only_the_package_sorted_with_fixed_metadata(tmp_path):
    """GIVEN the zip THEN only stream_processor sources, sorted, fixed times, no bytecode."""
    package = build_package(_fake_source(tmp_path))
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == ["stream_processor/__init__.py", "stream_processor/handler.py"]
        assert {i.date_time for i in infos} == {FIXED_DATE_TIME}
        assert archive.read("stream_processor/handler.py").startswith(b"def handler")


def test_the_real_package_zips_and_excludes_the_rest_of_the_project():
    """GIVEN this repository THEN the zip has stream_processor only, including the contract."""
    package = build_package()
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        names = archive.namelist()
    assert "stream_processor/contract.py" in names
    assert all(n.startswith("stream_processor/") for n in names)
    assert not any(n.endswith(".pyc") for n in names)


def test_a_missing_package_is_a_clear_error(tmp_path):
    """GIVEN no stream_processor package WHEN packaging THEN a FileNotFoundError names it."""
    with pytest.raises(FileNotFoundError, match="stream_processor"):
        build_package(tmp_path)
