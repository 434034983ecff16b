"""Modules that sit on both sides of a package cycle import cleanly when imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each module is imported first in a fresh interpreter, because a circular import fails only
# for some import orders, and the test session has imported everything already.
FIRST_IMPORTS = [
    "scaler.fastloop",
    "scaler.signals.widened",
    "scaler.backtest.policies.fastloop",
    "scaler.backtest.misses",
    "scaler.cycle",
    "scaler.service.app",
]


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_module_imports_first(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
