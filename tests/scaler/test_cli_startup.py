"""Start-up cost of the peakcast command line.

``peakcast --help``, ``--version`` and every ``peakcast <command> --help`` run no command, so
they load only ``scaler.cli.main`` and its imports. The heavy libraries therefore load inside
the commands that use them. These tests check which modules an import loads, not how long it
takes, so that a slow or busy machine cannot make them fail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from scaler.backtest.policies import DEFAULT_POLICIES
from scaler.cli import backtest as backtest_cli
from scaler.cli import report as report_cli
from scaler.report.output import FORMATS

ROOT = Path(__file__).resolve().parents[2]

HEAVY_LIBRARIES = ("statsmodels", "matplotlib", "kubernetes", "prophet", "apscheduler")

# Project modules that pull in the libraries above, or pandas and numpy.
HEAVY_PROJECT_MODULES = (
    "forecaster.engine",
    "scaler.backtest",
    "scaler.report",
    "scaler.kube",
    "scaler.service",
    "scaler.replay",
    "scaler.capacity_estimate",
)


def loaded_after_import(names: tuple[str, ...]) -> list[str]:
    """Import ``scaler.cli.main`` in a fresh interpreter; return which of ``names`` it loaded."""
    script = (
        "import scaler.cli.main; import sys; "
        f"print(sorted(m for m in {names!r} if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    loaded = ast.literal_eval(completed.stdout.strip())
    assert isinstance(loaded, list)
    return loaded


def test_cli_import_skips_heavy_libraries() -> None:
    assert loaded_after_import(HEAVY_LIBRARIES) == []


def test_cli_import_skips_pandas_and_numpy() -> None:
    assert loaded_after_import(("pandas", "numpy")) == []


def test_cli_import_skips_heavy_project_modules() -> None:
    assert loaded_after_import(HEAVY_PROJECT_MODULES) == []


def test_backtest_default_policies_match() -> None:
    # The CLI keeps its own copy so that its --help does not import the policies.
    assert backtest_cli.DEFAULT_POLICIES == DEFAULT_POLICIES


def test_report_formats_match() -> None:
    # The CLI keeps its own copy so that its --help does not import the renderers.
    assert report_cli.REPORT_FORMATS == FORMATS
