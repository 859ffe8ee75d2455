"""Security properties that hold across every template."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudformation.iam import ACTIONS_WITHOUT_RESOURCE_TYPES
from tests.cloudformation.conftest import resources_of_type

STACKS = ("streaming", "analytics", "orchestration")
#: The stacks with buckets (the orchestration stack keeps its compute logs in the lake's).
STACKS_WITH_BUCKETS = ("streaming", "analytics")


def _policy_documents(template: dict) -> Iterator[tuple[str, str, dict]]:
    """(logical id, kind, document) for every policy document in the template."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield logical_id, kind, policy["PolicyDocument"]
            yield logical_id, "trust", props["AssumeRolePolicyDocument"]
        elif kind in ("AWS::IAM::Policy", "AWS::S3::BucketPolicy", "AWS::IoT::Policy"):
            yield logical_id, kind, props["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, kind, props["KeyPolicy"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_allow_statement_grants_a_wildcard_action(templates, stack):
    """GIVEN every policy document THEN no Allow has an action containing `*`."""
    found = []
    for logical_id, _, document in _policy_documents(templates[stack]):
        for statement in document["Statement"]:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if statement["Effect"] == "Allow":
                found += [(logical_id, a) for a in actions if "*" in a]
            assert "NotAction" not in statement, logical_id
    assert found == []


@pytest.mark.parametrize("stack", STACKS)
def test_identity_policies_name_resources_never_everything(templates, stack):
    """GIVEN role and managed policies THEN no statement's resource is `*`, except for the
    actions AWS defines no resource type for (reading CloudWatch metrics)."""
    for logical_id, kind, document in _policy_documents(templates[stack]):
        if kind not in ("AWS::IAM::Role", "AWS::IAM::Policy"):
            continue  # key policies use "*" for the key itself; trust policies have none
        for statement in document["Statement"]:
            if "*" in statement["Resource"]:
                assert statement["Resource"] == ["*"], (logical_id, statement.get("Sid"))
                assert set(statement["Action"]) <= ACTIONS_WITHOUT_RESOURCE_TYPES, (
                    logical_id,
                    statement.get("Sid"),
                )


@pytest.mark.parametrize("stack", STACKS_WITH_BUCKETS)
def test_every_bucket_is_private_encrypted_versioned_and_tls_only(templates, stack):
    """GIVEN every bucket THEN public access blocked, encrypted, versioned, expiring uploads,
    and a bucket policy that denies requests without TLS."""
    template = templates[stack]
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    assert buckets
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
        for p in resources_of_type(template, "AWS::S3::BucketPolicy").values()
    }
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("AbortIncompleteMultipartUpload" in r for r in rules), logical_id
        tls = [
            s
            for s in policies[logical_id]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(tls) == 1, logical_id
        assert tls[0]["Principal"] == "*"


@pytest.mark.parametrize("stack", STACKS_WITH_BUCKETS)
def test_data_buckets_use_the_stack_key_and_log_access(templates, stack):
    """GIVEN the data buckets THEN SSE-KMS with the stack's key and access logging on."""
    for logical_id, bucket in resources_of_type(templates[stack], "AWS::S3::Bucket").items():
        if logical_id == "AccessLogBucket":
            continue  # the log target: SSE-S3, as S3 access log delivery requires
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", logical_id
        assert "DestinationBucketName" in props["LoggingConfiguration"], logical_id


@pytest.mark.parametrize("stack", STACKS)
def test_every_key_rotates(templates, stack):
    """GIVEN every customer managed key THEN rotation is on."""
    keys = resources_of_type(templates[stack], "AWS::KMS::Key")
    assert keys
    assert all(k["Properties"]["EnableKeyRotation"] is True for k in keys.values())
