"""`python -m cloudformation`: see `cloudformation.cli`."""

import sys

from cloudformation.cli import main

sys.exit(main())
