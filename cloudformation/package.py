"""The stream processor's deployment package: a reproducible zip of `stream_processor/`.

The same source always gives the same bytes (fixed timestamps and permissions,
sorted entries, no bytecode), so the zip's sha256 names the code: the S3 key
changes exactly when the code does, and only then does the function redeploy.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "stream_processor"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: The earliest time a zip entry can carry; any fixed value would do.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class LambdaPackage:
    """A built zip and the S3 key it is uploaded under."""

    data: bytes
    sha256: str

    @property
    def s3_key(self) -> str:
        """`stream_processor/<sha256>.zip`: a new key for every change of code."""
        return f"{PACKAGE}/{self.sha256}.zip"


def package_files(root: Path = SOURCE_ROOT, package: str = PACKAGE) -> list[Path]:
    """The files that go into the zip, relative to `root`, sorted."""
    package_dir = root / package
    if not (package_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"no Python package at {package_dir}")
    files = []
    for path in package_dir.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or path.suffix in _SKIPPED_SUFFIXES:
            continue
        if _SKIPPED_DIRS.intersection(relative.parts):
            continue
        files.append(relative)
    return sorted(files, key=lambda p: p.as_posix())


def build_package(root: Path = SOURCE_ROOT, package: str = PACKAGE) -> LambdaPackage:
    """Zip `package` (only that package) deterministically."""
    data = deterministic_zip(root, package_files(root, package))
    return LambdaPackage(data=data, sha256=hashlib.sha256(data).hexdigest())


def deterministic_zip(root: Path, files: list[Path]) -> bytes:
    """The zip of `files` (relative to `root`): the same files always give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            info.create_system = 3  # Unix, so the permissions above are honoured
            archive.writestr(info, (root / relative).read_bytes(), compresslevel=9)
    return buffer.getvalue()
