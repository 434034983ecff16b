"""Capacity-planning and backtest reports: one data model, rendered as HTML, Markdown or JSON.

``peakcast report`` fills the model from a forecast (``from_forecast``), ``peakcast backtest``
from a ``BacktestResult`` (``from_backtest``), and ``output.render`` turns it into text.
"""
