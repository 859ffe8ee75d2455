"""Small constructors for template parameters, so every one carries its bounds."""

from __future__ import annotations

from collections.abc import Sequence

from troposphere import Export, Output, Parameter, Sub, Template

from cloudformation.checkov import skip as _skip  # re-exported for stack modules

__all__ = ["choice", "export_output", "number", "skip", "text"]

skip = _skip


def number(
    template: Template,
    title: str,
    default: int,
    description: str,
    *,
    minimum: int,
    maximum: int,
) -> Parameter:
    """A numeric parameter bounded to what the AWS API accepts."""
    return template.add_parameter(
        Parameter(
            title,
            Type="Number",
            Default=default,
            MinValue=minimum,
            MaxValue=maximum,
            Description=description,
        )
    )


def choice(
    template: Template, title: str, default: str, allowed: Sequence[str], description: str
) -> Parameter:
    """A string parameter limited to `allowed`."""
    return template.add_parameter(
        Parameter(
            title,
            Type="String",
            Default=default,
            AllowedValues=list(allowed),
            Description=description,
        )
    )


#: An S3 key prefix given as a parameter: lowercase path segments ending in `/`.
KEY_PREFIX_PATTERN = r"^[a-z0-9_\-/]+/$"


def text(
    template: Template,
    title: str,
    description: str,
    *,
    default: str | None = None,
    pattern: str | None = None,
) -> Parameter:
    """A free-text parameter, optionally constrained by a pattern."""
    kwargs = {}
    if default is not None:
        kwargs["Default"] = default
    if pattern is not None:
        kwargs["AllowedPattern"] = pattern
    return template.add_parameter(
        Parameter(title, Type="String", Description=description, **kwargs)
    )


def export_output(template: Template, key: str, value, description: str) -> Output:
    """An output exported as `<stack name>-<key>` so other stacks can import it."""
    return template.add_output(
        Output(
            key,
            Description=description,
            Value=value,
            Export=Export(Sub(f"${{AWS::StackName}}-{key}")),
        )
    )
