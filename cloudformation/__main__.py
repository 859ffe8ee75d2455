"""`python -m cloudformation`: see `cloudformation.cli`."""

import sys

from cloudformation.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
