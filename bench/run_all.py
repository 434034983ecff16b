"""Run every benchmark in turn; each rewrites its own section of docs/BENCHMARKS.md.

Usage: python bench/run_all.py [NAME ...]   (names: see BENCHMARKS below; default all)
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent

# Name -> script, in the order they run. Each script has main(argv) -> exit code.
BENCHMARKS = {
    "forecast_accuracy": "forecast_accuracy.py",
    "thanos_fetch": "thanos_fetch.py",
    "backtest_traces": "backtest_traces.py",
    "cycle_scale": "cycle_scale.py",
}


def run(name: str) -> int:
    """Import bench/<script> by path and call its main() with no arguments."""
    path = BENCH_DIR / BENCHMARKS[name]
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    if spec is None or spec.loader is None:
        print(f"cannot load {path}", file=sys.stderr)
        return 1
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the script executes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    started = time.perf_counter()
    print(f"== {name} ({path.name})", flush=True)
    code = int(module.main([]))
    print(f"== {name} finished in {time.perf_counter() - started:.0f} s with exit code {code}")
    return code


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    failures = [name for name in names if run(name) != 0]
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR.parent))
    raise SystemExit(main(sys.argv[1:]))
