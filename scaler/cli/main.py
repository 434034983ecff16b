"""The ``peakcast`` command line."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

# The command modules import pandas, statsmodels, matplotlib, the Kubernetes client and the
# scheduler inside the functions that use them, so that --help and --version load none of them.
# tests/scaler/test_cli_startup.py checks this.
from scaler.cli import backtest, estimate, expire, forecast, plan, report, run, status, validate

app = typer.Typer(
    name="peakcast",
    help="Predictive autoscaler for GPU model serving: forecast demand, provision GPU nodes "
    "ahead of peaks, backtest against reactive and oracle policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(requested: bool) -> None:
    if not requested:
        return
    try:
        installed = version("peakcast")
    except PackageNotFoundError:
        installed = "unknown (the peakcast distribution is not installed)"
    typer.echo(f"peakcast {installed}")
    raise typer.Exit()


@app.callback()
def global_options(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed peakcast version and exit.",
    ),
) -> None:
    pass


app.command("validate-config")(validate.validate_config)
app.command("forecast")(forecast.forecast)
app.command("plan")(plan.plan)
app.command("backtest")(backtest.backtest)
app.command("run")(run.run)
app.command("report")(report.report)
app.command("status")(status.status)
app.command("expire-floors")(expire.expire)
app.command("estimate-capacity")(estimate.estimate_capacity)


if __name__ == "__main__":
    app()
