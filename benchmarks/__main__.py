"""Run every benchmark module (`bench_*.py`), or only those named on the command line."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def main(argv: list[str]) -> int:
    """Import and run each selected benchmark's `main()` in name order."""
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    selected = [n for n in names if not argv or any(a in n for a in argv)]
    if not selected:
        print(f"no benchmark matches {argv}; available: {', '.join(names)}")
        return 2
    for name in selected:
        print(f"== {name}")
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
