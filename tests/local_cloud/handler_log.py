"""What the test handlers were called with, kept outside their module.

The local Lambda runtime loads each function's handler module afresh (as a new
sandbox would), so the record of invocations lives here, in one shared module.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

INVOCATIONS: dict[str, list[dict[str, Any]]] = defaultdict(list)
CONTEXTS: dict[str, list[dict[str, Any]]] = defaultdict(list)
LOCK = threading.Lock()
