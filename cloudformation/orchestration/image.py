"""The project's image: its ECR repository, and the CodeBuild project that builds it.

`stack deploy` uploads the source archive to the artifact bucket and starts a build with
it; the build runs `docker build` on the root Dockerfile and pushes the image tagged
with the archive's sha256. The deploying machine needs no Docker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from awacs import ecr as ecra
from awacs import kms as kmsa
from awacs import logs as logsa
from awacs import s3 as s3a
from troposphere import AWSHelperFn, GetAtt, Ref, Sub, Template
from troposphere.codebuild import (
    Artifacts,
    Environment,
    EnvironmentVariable,
    LogsConfig,
    Project,
    Source,
)
from troposphere.codebuild import CloudWatchLogs as BuildLogs
from troposphere.ecr import (
    EncryptionConfiguration,
    ImageScanningConfiguration,
    LifecyclePolicy,
    Repository,
)
from troposphere.iam import Role
from troposphere.logs import LogGroup

from cloudformation.iam import NO_RESOURCE_TYPE, allow, arn, global_arn, service_role
from cloudformation.layout import IMAGE_SOURCE_PREFIX
from cloudformation.naming import ARTIFACTS_PURPOSE, Naming
from cloudformation.orchestration.encryption import codebuild_log_group
from cloudformation.orchestration.parameters import OrchestrationParameters

#: Images kept in the repository: the running one and enough to roll back to.
IMAGES_KEPT = 20
BUILD_TIMEOUT_MINUTES = 30
#: CodeBuild's own image with Docker (x86_64, as the tasks run).
BUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
#: The build's variables: where to push, and the tag (the start of each build sets it).
REPOSITORY_URI_VARIABLE = "REPOSITORY_URI"
IMAGE_TAG_VARIABLE = "IMAGE_TAG"

# `docker build` of the archive's root, pushed under the build's tag; a build without a tag
# fails rather than pushing an untagged image. Pushed in the build phase (post_build would
# follow even a failed build). JSON is YAML, which a buildspec is written in.
_REGISTRY = f'"${{{REPOSITORY_URI_VARIABLE}%%/*}}"'
_IMAGE = f'"${REPOSITORY_URI_VARIABLE}:${IMAGE_TAG_VARIABLE}"'
BUILDSPEC = json.dumps(
    {
        "version": 0.2,
        "phases": {
            "pre_build": {
                "commands": [
                    f'test -n "${IMAGE_TAG_VARIABLE}"',
                    'aws ecr get-login-password --region "$AWS_REGION" | docker login '
                    f"--username AWS --password-stdin {_REGISTRY}",
                ]
            },
            "build": {"commands": [f"docker build --tag {_IMAGE} .", f"docker push {_IMAGE}"]},
        },
    },
    indent=2,
)


@dataclass(frozen=True)
class ImageBuild:
    """The repository, the build project and the build's role."""

    repository: Repository
    project: Project
    role: Role


def add_image_build(
    t: Template, naming: Naming, params: OrchestrationParameters, *, key_arn: AWSHelperFn
) -> ImageBuild:
    """Add the image repository and the CodeBuild project (with its role and log group)."""
    repository = t.add_resource(
        Repository(
            "ImageRepository",
            RepositoryName=naming.image_repository,
            # A tag is the hash of the source it was built from: it never names another image.
            ImageTagMutability="IMMUTABLE",
            ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
            EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS", KmsKey=key_arn),
            LifecyclePolicy=LifecyclePolicy(LifecyclePolicyText=json.dumps(_lifecycle_rules())),
            # `stack destroy` deletes the repository with its images.
            EmptyOnDelete=True,
        )
    )
    log_group = t.add_resource(
        LogGroup(
            "ImageBuildLogGroup",
            LogGroupName=codebuild_log_group(naming),
            RetentionInDays=Ref(params.log_retention_days),
            KmsKeyId=key_arn,
        )
    )
    role = t.add_resource(
        service_role(
            "ImageBuildRole",
            role_name=naming.name("role", "imagebuild"),
            service="codebuild.amazonaws.com",
            policy_name="build-and-push-the-image",
            description="Lets CodeBuild read the uploaded source and push the image.",
            statements=[
                allow(
                    [s3a.GetObject, s3a.GetObjectVersion],
                    [
                        global_arn(
                            "s3", f"{naming.bucket_sub(ARTIFACTS_PURPOSE)}/{IMAGE_SOURCE_PREFIX}*"
                        )
                    ],
                    sid="ReadTheSourceArchives",
                ),
                allow(
                    [logsa.CreateLogStream, logsa.PutLogEvents],
                    [arn("logs", f"log-group:{codebuild_log_group(naming)}:*")],
                    sid="WriteTheBuildLogs",
                ),
                # ECR's sign-in has no resource type: "*" is the only resource AWS accepts.
                allow([ecra.GetAuthorizationToken], [NO_RESOURCE_TYPE], sid="SignInToEcr"),
                allow(
                    [
                        ecra.BatchCheckLayerAvailability,
                        ecra.InitiateLayerUpload,
                        ecra.UploadLayerPart,
                        ecra.CompleteLayerUpload,
                        ecra.PutImage,
                        ecra.BatchGetImage,
                        ecra.GetDownloadUrlForLayer,
                    ],
                    [GetAtt(repository, "Arn")],
                    sid="PushTheImage",
                ),
                allow(
                    [kmsa.Decrypt, kmsa.GenerateDataKey, kmsa.DescribeKey],
                    [key_arn],
                    sid="UseTheOrchestrationKey",
                ),
            ],
        )
    )
    project = t.add_resource(
        Project(
            "ImageBuildProject",
            Name=naming.image_build,
            Description="Builds the project's image from the source archive stack deploy "
            "uploads, and pushes it tagged by the archive's sha256.",
            ServiceRole=GetAtt(role, "Arn"),
            # Each build names its archive (`sourceLocationOverride`); this is where they are.
            Source=Source(
                Type="S3",
                Location=Sub(f"{naming.bucket_sub(ARTIFACTS_PURPOSE)}/{IMAGE_SOURCE_PREFIX}"),
                BuildSpec=BUILDSPEC,
            ),
            Artifacts=Artifacts(Type="NO_ARTIFACTS"),
            Environment=Environment(
                Type="LINUX_CONTAINER",
                ComputeType="BUILD_GENERAL1_MEDIUM",
                Image=BUILD_IMAGE,
                # `docker build` inside the build container needs the Docker daemon; the
                # build runs only the project's own Dockerfile.
                PrivilegedMode=True,
                EnvironmentVariables=[
                    EnvironmentVariable(
                        Name=REPOSITORY_URI_VARIABLE,
                        Type="PLAINTEXT",
                        Value=GetAtt(repository, "RepositoryUri"),
                    ),
                    EnvironmentVariable(Name=IMAGE_TAG_VARIABLE, Type="PLAINTEXT", Value=""),
                ],
            ),
            EncryptionKey=key_arn,
            TimeoutInMinutes=BUILD_TIMEOUT_MINUTES,
            LogsConfig=LogsConfig(
                CloudWatchLogs=BuildLogs(Status="ENABLED", GroupName=Ref(log_group))
            ),
        )
    )
    return ImageBuild(repository=repository, project=project, role=role)


def _lifecycle_rules() -> dict[str, object]:
    """Keep the newest `IMAGES_KEPT` images; older ones expire."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Keep the newest {IMAGES_KEPT} images.",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": IMAGES_KEPT,
                },
                "action": {"type": "expire"},
            }
        ]
    }
