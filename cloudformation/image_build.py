"""The project's image, built in AWS from the uploaded source: no Docker on the deploying machine.

`stack deploy` zips the files the root Dockerfile copies (reproducibly, like the
function's zip), uploads the archive to the artifact bucket as `image/<sha256>.zip`,
and has the orchestration stack's CodeBuild project build and push the image tagged
with that sha256, unless the repository holds that tag already. Only then do the
stack's tasks move to it, so a failed build leaves the running tasks as they were. On
the first deploy the stack is created first, with no image and no task running, since
the repository and the build project are its own.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cloudformation.layout import IMAGE_SOURCE_PREFIX
from cloudformation.naming import Naming
from cloudformation.orchestration.image import IMAGE_TAG_VARIABLE
from cloudformation.orchestration.parameters import NO_IMAGE
from cloudformation.package import SOURCE_ROOT, deterministic_zip

#: The orchestration stack's parameter naming the image its tasks run.
IMAGE_TAG_PARAMETER = "ImageTag"
#: What the Dockerfile copies: the lock and project files, the packages and the dbt project.
SOURCE_FILES = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "workspace.yaml",
)
SOURCE_FOLDERS = (
    "stream_processor",
    "cloudformation",
    "pipeline_platform",
    "local_cloud",
    "platform_tools",
    "dbt_redshift",
)
# What a working copy holds besides the source: bytecode, dbt's parse output and logs.
_SKIPPED_PARTS = {"__pycache__", "target", "logs", "dbt_packages"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}
_SKIPPED_NAMES = {".user.yml"}
#: A build's states that are final (anything else is still going).
_BUILD_DONE = {"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"}

Log = Callable[[str], None]


class ImageBuildFailed(RuntimeError):
    """The image build did not succeed; the message says how it ended and where its log is."""


@dataclass(frozen=True)
class SourceArchive:
    """The zipped source of the image and the key it is uploaded under."""

    data: bytes
    sha256: str

    @property
    def s3_key(self) -> str:
        """`image/<sha256>.zip`: a new key, and image tag, for every change of the source."""
        return f"{IMAGE_SOURCE_PREFIX}{self.sha256}.zip"


def source_files(root: Path = SOURCE_ROOT) -> list[Path]:
    """The files of the image's source, relative to `root`, sorted."""
    files = [Path(name) for name in SOURCE_FILES]
    missing = [str(f) for f in files if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"the image's source lacks {missing} under {root}")
    for folder in SOURCE_FOLDERS:
        for path in (root / folder).rglob("*"):
            relative = path.relative_to(root)
            if not path.is_file() or _SKIPPED_PARTS.intersection(relative.parts):
                continue
            if path.suffix in _SKIPPED_SUFFIXES or path.name in _SKIPPED_NAMES:
                continue
            files.append(relative)
    return sorted(files, key=lambda p: p.as_posix())


def build_source_archive(root: Path = SOURCE_ROOT) -> SourceArchive:
    """Zip the image's source deterministically."""
    data = deterministic_zip(root, source_files(root))
    return SourceArchive(data=data, sha256=hashlib.sha256(data).hexdigest())


def image_exists(ecr: Any, repository: str, tag: str) -> bool:
    """Whether the repository holds an image tagged `tag`."""
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ImageNotFoundException",):
            return False
        raise
    return True


def build_image(
    codebuild: Any,
    *,
    project: str,
    bucket: str,
    archive: SourceArchive,
    poll_seconds: float = 10.0,
    log: Log = lambda _: None,
) -> str:
    """Build and push the image of `archive` with the CodeBuild project; return the build id."""
    build = codebuild.start_build(
        projectName=project,
        sourceTypeOverride="S3",
        sourceLocationOverride=f"{bucket}/{archive.s3_key}",
        environmentVariablesOverride=[
            {"name": IMAGE_TAG_VARIABLE, "value": archive.sha256, "type": "PLAINTEXT"}
        ],
    )["build"]
    log(f"{project}: building the image {archive.sha256[:12]} (build {build['id']})")
    while build.get("buildStatus", "IN_PROGRESS") not in _BUILD_DONE:
        time.sleep(poll_seconds)
        build = codebuild.batch_get_builds(ids=[build["id"]])["builds"][0]
    if build["buildStatus"] != "SUCCEEDED":
        where = build.get("logs", {}).get("deepLink", "the project's log group")
        raise ImageBuildFailed(
            f"{project}: the image build ended {build['buildStatus']} in phase "
            f"{build.get('currentPhase', '?')}; its log: {where}"
        )
    log(f"{project}: image {archive.sha256[:12]} built and pushed")
    return str(build["id"])


def deploy_with_image(
    session: Any,
    naming: Naming,
    *,
    artifacts_bucket: str,
    values: Mapping[str, str],
    stack_exists: bool,
    apply: Callable[[Mapping[str, str]], dict[str, str]],
    upload: Callable[[str, bytes], None],
    poll_seconds: float = 10.0,
    log: Log = lambda _: None,
) -> dict[str, str]:
    """Deploy the orchestration stack running the image of the current source.

    `apply(values)` creates or updates the stack with those parameter values; `upload(key,
    data)` puts an artifact. An `ImageTag` among `values` (an image built before) is
    deployed as it is, without a build.
    """
    if IMAGE_TAG_PARAMETER in values:
        return apply(values)
    archive = build_source_archive()
    upload(archive.s3_key, archive.data)
    if not stack_exists:
        # The repository and the build project are the stack's: create them, no task yet.
        apply({**values, IMAGE_TAG_PARAMETER: NO_IMAGE})
    ecr = session.client("ecr")
    if image_exists(ecr, naming.image_repository, archive.sha256):
        log(f"{naming.image_repository}: image {archive.sha256[:12]} already built")
    else:
        build_image(
            session.client("codebuild"),
            project=naming.image_build,
            bucket=artifacts_bucket,
            archive=archive,
            poll_seconds=poll_seconds,
            log=log,
        )
    return apply({**values, IMAGE_TAG_PARAMETER: archive.sha256})
