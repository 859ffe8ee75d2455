"""Small constructors for template parameters, so every one carries its bounds."""

from __future__ import annotations

from collections.abc import Sequence

from troposphere import AWSHelperFn, Export, Output, Parameter, Sub, Template

from cloudformation.checkov import skip as _skip  # re-exported for stack modules

__all__ = [
    "KEY_PREFIX_PATTERN",
    "choice",
    "export_output",
    "export_outputs",
    "number",
    "skip",
    "text",
]

skip = _skip


def _plain(value: float) -> int | float:
    """`value` as an int when it is whole, so `50.0` renders as `50` like the bounds."""
    return int(value) if float(value).is_integer() else value


def number(
    template: Template,
    title: str,
    default: float,
    description: str,
    *,
    minimum: int,
    maximum: int,
) -> Parameter:
    """A numeric parameter bounded to what the AWS API accepts.

    `default` may be a float (the function's settings are); a whole one renders
    without its `.0`.
    """
    return template.add_parameter(
        Parameter(
            title,
            Type="Number",
            Default=_plain(default),
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
    optional: dict[str, str] = {}
    if default is not None:
        optional["Default"] = default
    if pattern is not None:
        optional["AllowedPattern"] = pattern
    return template.add_parameter(
        Parameter(title, Type="String", Description=description, **optional)
    )


def export_output(
    template: Template, key: str, value: AWSHelperFn | str, description: str
) -> Output:
    """An output exported as `<stack name>-<key>` so other stacks can import it."""
    return template.add_output(
        Output(
            key,
            Description=description,
            Value=value,
            Export=Export(Sub(f"${{AWS::StackName}}-{key}")),
        )
    )


def export_outputs(template: Template, outputs: dict[str, tuple[AWSHelperFn | str, str]]) -> None:
    """`export_output` for every `key: (value, description)` of `outputs`."""
    for key, (value, description) in outputs.items():
        export_output(template, key, value, description)
