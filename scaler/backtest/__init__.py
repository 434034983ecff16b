"""Offline backtests: replay a trace through peakcast and baseline policies and the simulator.

See docs/SIMULATOR.md for the definitions of the simulator, the policies and the metrics.
"""

from scaler.backtest.runner import BacktestResult, PolicyRun, run_backtest

__all__ = ["BacktestResult", "PolicyRun", "run_backtest"]
