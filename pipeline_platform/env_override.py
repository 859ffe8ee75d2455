"""Temporarily set process environment variables (for runs that read their settings there)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def overridden(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in `os.environ` for the block, then restore what was there before."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
