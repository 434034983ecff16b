"""Tune peakcast's planning defaults on several real traces at once.

Each variant is a set of config overrides (dotted keys) on top of config/peakcast.yaml, and it
is backtested on every trace (see bench/tuning.py for sizing and reuse). The tables give, per
trace, peakcast's under-provisioned GPU-minutes as a share of the reactive baseline's and its
GPU-hours over the oracle's. The target is at most 20 % and at most 1.15x. The old defaults,
the finalists and the chosen defaults then also run on held-out spans that the sweep did not
choose from. The headroom table runs the reactive baseline alone with lower target
utilisations, to show what plain headroom costs on each trace. Findings are in docs/TUNING.md.

    .venv/bin/python bench/tune_policy.py       # sweep and held-out spans, 7 min on 2 cores
    .venv/bin/python bench/tune_policy.py --grid chosen --traces servegen,asg_cpu
    .venv/bin/python bench/tune_policy.py --grid none --no-held-out --variant mine \\
        --set forecast.planning_level=0.85 --set policy.stabilization_window_seconds=600
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tuning import (
    HELD_OUT,
    PEAKCAST,
    ROOT,
    TRACES,
    Cell,
    TraceCase,
    Tuner,
    Variant,
    base_config,
    share_of,
)
from forecaster.errors import ConfigError

logger = logging.getLogger("bench.tune_policy")

DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
SHORTFALL_TARGET = 0.20
GPU_HOURS_TARGET = 1.15
HEADROOM_FACTORS = (1.0, 0.85, 0.7, 0.6, 0.5)

# config/peakcast.yaml before this tuning, spelled out so that the sweep stays comparable
# after the defaults change.
OLD_DEFAULTS: dict[str, Any] = {
    "forecast.step_seconds": 1800,
    "forecast.aggregation": "max",
    "forecast.planning_level": 0.9,
    "forecast.calibration_windows": 14,
    "policy.lead_time_margin_seconds": 120,
    "policy.stabilization_window_seconds": 1800,
    "policy.max_scale_down_nodes_per_cycle": 1,
    "policy.max_scale_down_replicas_per_cycle": 2,
    "policy.workload_floor_fills_nodes": False,
    "backtest.replan_interval_seconds": 3600,
}

# Knobs moved one at a time away from the old defaults.
ONE_AT_A_TIME: list[tuple[str, list[Any]]] = [
    ("forecast.planning_level", [0.5, 0.75, 0.95]),
    ("forecast.step_seconds", [600, 3600]),
    ("forecast.aggregation", ["mean", "p95"]),
    ("forecast.calibration_windows", [56]),
    ("policy.workload_floor_fills_nodes", [True]),
    ("policy.lead_time_margin_seconds", [0, 300]),
    ("policy.stabilization_window_seconds", [0, 600]),
    ("backtest.replan_interval_seconds", [600]),
]

# The structural changes that helped on every trace, on which the level and the aggregation
# are then crossed.
NEW_STRUCTURE: dict[str, Any] = {
    **OLD_DEFAULTS,
    "forecast.step_seconds": 600,
    "forecast.calibration_windows": 56,
    "policy.workload_floor_fills_nodes": True,
}
NEW_LEVELS = (0.75, 0.8, 0.85, 0.9)
NEW_AGGREGATIONS = ("max", "mean")
# Single changes on top of the chosen defaults.
CHOSEN_OVERRIDES: dict[str, Any] = {**NEW_STRUCTURE, "forecast.aggregation": "mean"}
AROUND_CHOSEN: list[dict[str, Any]] = [
    {"policy.stabilization_window_seconds": 600},
    {"forecast.step_seconds": 300},
    {"forecast.step_seconds": 1800},
    {"forecast.step_seconds": 1800, "forecast.planning_level": 0.85},
    {"backtest.replan_interval_seconds": 600},
    {"policy.max_scale_down_replicas_per_cycle": 8},
]
# Variants also run on the held-out spans: the best of the sweep and its close rivals.
FINALISTS = (
    "new, level=0.8, aggregation=max",
    "new, level=0.85, aggregation=mean",
    "chosen, stabilization_window_seconds=600",
    "chosen, step_seconds=1800, planning_level=0.85",
)

OLD = Variant("old defaults", OLD_DEFAULTS)
CHOSEN = Variant("chosen (config/peakcast.yaml)")


def sweep_variants() -> list[Variant]:
    """Return the sweep: the old defaults, one knob at a time, the new grid, the chosen ones."""
    variants = [OLD]
    for key, values in ONE_AT_A_TIME:
        for value in values:
            name = f"old, {short_key(key)}={value_text(value)}"
            variants.append(Variant(name, {**OLD_DEFAULTS, key: value}))
    for level in NEW_LEVELS:
        for aggregation in NEW_AGGREGATIONS:
            overrides = {
                **NEW_STRUCTURE,
                "forecast.planning_level": level,
                "forecast.aggregation": aggregation,
            }
            variants.append(Variant(f"new, level={level:g}, aggregation={aggregation}", overrides))
    for change in AROUND_CHOSEN:
        name = ", ".join(f"{short_key(key)}={value_text(value)}" for key, value in change.items())
        variants.append(Variant(f"chosen, {name}", {**CHOSEN_OVERRIDES, **change}))
    variants.append(CHOSEN)
    return variants


def held_out_variants(variants: Sequence[Variant]) -> list[Variant]:
    """Return the old defaults, the finalists and the chosen defaults, as far as they ran."""
    names = {OLD.name, *FINALISTS, CHOSEN.name}
    return [variant for variant in variants if variant.name in names]


def short_key(key: str) -> str:
    return key.split(".", 1)[1]


def value_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- scoring and tables ---------------------------------------------------------------------


def met(share: float, ratio: float) -> bool:
    """Tell whether a result meets both parts of the target."""
    return share <= SHORTFALL_TARGET and ratio <= GPU_HOURS_TARGET


def excess(share: float, ratio: float) -> float:
    """Return how far a result misses the target, as relative overshoot of each part, summed.

    0 means met. 27 % and 1.17x give 0.35 + 0.02 = 0.37.
    """
    return max(0.0, share / SHORTFALL_TARGET - 1) + max(0.0, ratio / GPU_HOURS_TARGET - 1)


def grid_table(cells: Sequence[Cell], traces: Sequence[str], policy: str) -> list[str]:
    """Return one markdown row per variant: shortfall share / GPU-hour ratio on each trace.

    A result that meets the target is bold; "excess" sums ``excess`` over the traces.
    """
    header = ["variant", *traces, "met", "excess", "mean GPU-h ratio"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for variant, row in by_variant(cells).items():
        entries = []
        for trace in traces:
            found = row.get(trace)
            if found is None:
                entries.append("–")
                continue
            share, ratio = found.shortfall_share[policy], found.gpu_hours_ratio[policy]
            text = f"{share:.0%} / {ratio:.2f}×"
            entries.append(f"**{text}**" if met(share, ratio) else text)
        found_cells = list(row.values())
        hits = sum(met(c.shortfall_share[policy], c.gpu_hours_ratio[policy]) for c in found_cells)
        total = sum(
            excess(c.shortfall_share[policy], c.gpu_hours_ratio[policy]) for c in found_cells
        )
        mean_ratio = float(np.mean([c.gpu_hours_ratio[policy] for c in found_cells]))
        lines.append(
            f"| {variant} | {' | '.join(entries)} | {hits}/{len(found_cells)} | {total:.2f} "
            f"| {mean_ratio:.2f}× |"
        )
    return lines


def by_variant(cells: Sequence[Cell]) -> dict[str, dict[str, Cell]]:
    grouped: dict[str, dict[str, Cell]] = {}
    for item in cells:
        grouped.setdefault(item.variant, {})[item.trace] = item
    return grouped


def best_variant(cells: Sequence[Cell], policy: str) -> str:
    """Return the variant with the lowest summed excess, ties broken by the mean GPU-h ratio."""

    def score(row: dict[str, Cell]) -> tuple[float, float]:
        found = list(row.values())
        total = sum(excess(c.shortfall_share[policy], c.gpu_hours_ratio[policy]) for c in found)
        return round(total, 2), float(np.mean([c.gpu_hours_ratio[policy] for c in found]))

    grouped = by_variant(cells)
    return min(grouped, key=lambda name: score(grouped[name]))


def detail_table(cells: Sequence[Cell], variants: Sequence[str]) -> list[str]:
    """Return absolute numbers per trace for the given variants (both peakcast policies)."""
    lines = [
        "| trace | variant | reactive short GPU-min | oracle GPU-h | policy | short GPU-min "
        "| vs reactive | GPU-h | vs oracle | burst vs oracle |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for item in cells:
        if item.variant not in variants:
            continue
        reactive, oracle = item.metrics["reactive"], item.metrics["oracle"]
        for policy in PEAKCAST:
            mine = item.metrics[policy]
            lines.append(
                f"| {item.trace} | {item.variant} | {reactive.shortfall_gpu_minutes:,.0f} "
                f"| {oracle.gpu_hours:,.0f} | {policy} | {mine.shortfall_gpu_minutes:,.0f} "
                f"| {item.shortfall_share[policy]:.0%} | {mine.gpu_hours:,.0f} "
                f"| {item.gpu_hours_ratio[policy]:.2f}× | {item.burst_ratio[policy]:.2f}× |"
            )
    return lines


def trace_table(tuner: Tuner, cases: Sequence[TraceCase]) -> list[str]:
    """Return what each trace is and how its fleet was sized."""
    lines = [
        "| trace | what it is | step | warm-up d | simulated d | throughput per replica "
        "| GPUs per replica | static nodes | burst max nodes |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        setup = tuner.setup(case)
        capacity = setup.config["workloads"][0]["capacity"]
        pools = {pool["kind"]: pool for pool in setup.config["pools"]}
        lines.append(
            f"| {case.name} | {case.kind} | {setup.history.step.total_seconds() / 60:g} min "
            f"| {case.warmup_days:g} | {case.simulated_days:g} "
            f"| {capacity['throughput_per_replica']:,.3g} {case.unit} "
            f"| {capacity.get('gpus_per_replica', 1)} | {pools['static']['max_nodes']} "
            f"| {pools['burst']['max_nodes']} |"
        )
    return lines


def headroom_table(tuner: Tuner, cases: Sequence[TraceCase]) -> list[str]:
    """Return the reactive baseline at lower target utilisations against its own default run.

    A factor of 0.7 plans every replica at 70 % of the configured target utilisation, so the
    HPA keeps about 1/0.7 - 1 = 43 % more headroom. The oracle keeps the configured value.
    """
    header = ["trace", *(f"utilisation × {factor:g}" for factor in HEADROOM_FACTORS)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(HEADROOM_FACTORS)]
    for case in cases:
        baselines = tuner.baselines(case)
        reactive, oracle = baselines["reactive"], baselines["oracle"]
        entries = []
        for factor in HEADROOM_FACTORS:
            run = tuner.reactive(case, factor)
            share = share_of(run.shortfall_gpu_minutes, reactive.shortfall_gpu_minutes)
            ratio = run.gpu_hours / oracle.gpu_hours
            text = f"{share:.0%} / {ratio:.2f}×"
            entries.append(f"**{text}**" if met(share, ratio) else text)
        lines.append(f"| {case.name} | {' | '.join(entries)} |")
    return lines


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Base config.")
    parser.add_argument(
        "--grid",
        choices=["sweep", "chosen", "none"],
        default="sweep",
        help="Variants: the whole sweep (default), the old defaults and the chosen ones, or "
        "none (only the --set variant).",
    )
    parser.add_argument(
        "--traces",
        default=",".join(case.name for case in TRACES),
        help="Comma-separated traces to tune on (default: %(default)s; also: "
        + ", ".join(case.name for case in HELD_OUT)
        + ").",
    )
    parser.add_argument(
        "--match", default="", help="Run only the grid variants whose name contains this text."
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Config override of one extra variant, e.g. forecast.planning_level=0.85 (value "
        "read as YAML); repeat for more keys.",
    )
    parser.add_argument("--variant", default="custom", help="Name of the --set variant.")
    parser.add_argument(
        "--days", type=float, default=None, help="Simulate at most this many days per trace."
    )
    parser.add_argument(
        "--no-held-out",
        action="store_true",
        help="Skip the check of the old defaults, the finalists and the chosen defaults on "
        "the held-out spans.",
    )
    parser.add_argument(
        "--no-headroom", action="store_true", help="Skip the reactive headroom table."
    )
    return parser.parse_args(argv)


def chosen_cases(names: str, days: float | None) -> list[TraceCase]:
    known = {case.name: case for case in (*TRACES, *HELD_OUT)}
    cases = []
    for name in filter(None, names.split(",")):
        if name not in known:
            raise SystemExit(f"--traces: unknown trace {name!r}; known: {', '.join(known)}")
        cases.append(shortened(known[name], days))
    return cases


def shortened(case: TraceCase, days: float | None) -> TraceCase:
    if days is None:
        return case
    return replace(case, simulated_days=min(days, case.simulated_days))


def variants_for(args: argparse.Namespace) -> list[Variant]:
    grids: dict[str, Callable[[], list[Variant]]] = {
        "sweep": sweep_variants,
        "chosen": lambda: [OLD, CHOSEN],
        "none": list,
    }
    variants = [v for v in grids[args.grid]() if args.match in v.name]
    if args.set:
        overrides = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
            overrides[key] = yaml.safe_load(value)
        variants.append(Variant(args.variant, overrides))
    return variants


def run_all(tuner: Tuner, variants: Sequence[Variant], cases: Sequence[TraceCase]) -> list[Cell]:
    """Run every variant on every trace, reporting progress on stderr."""
    cells: list[Cell] = []
    for variant in variants:
        for case in cases:
            started = time.perf_counter()
            try:
                found = tuner.run(case, variant)
            except ConfigError as error:
                print(f"{variant.name} on {case.name}: skipped, {error}", file=sys.stderr)
                continue
            cells.append(found)
            results = "  ".join(
                f"{p}: {found.shortfall_share[p]:.0%} / {found.gpu_hours_ratio[p]:.2f}x"
                for p in PEAKCAST
            )
            print(
                f"{variant.name:<50} {case.name:<10} {results}  "
                f"[{time.perf_counter() - started:.1f} s]",
                file=sys.stderr,
                flush=True,
            )
    return cells


def print_grid(cells: Sequence[Cell], cases: Sequence[TraceCase], title: str) -> None:
    names = [case.name for case in cases]
    for policy in reversed(PEAKCAST):
        print(f"\n{title}, {policy}: under-provisioned GPU-min vs reactive / GPU-h vs oracle\n")
        print("\n".join(grid_table(cells, names, policy)))
    if cells:
        print(f"\nLowest excess for {PEAKCAST[1]}: {best_variant(cells, PEAKCAST[1])}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cases = chosen_cases(args.traces, args.days)
    tuner = Tuner(base_config(args.config))
    started = time.perf_counter()
    variants = variants_for(args)
    cells = run_all(tuner, variants, cases)
    held_out = [shortened(case, args.days) for case in HELD_OUT]
    checked = [] if args.no_held_out else held_out_variants(variants)
    held_cells = run_all(tuner, checked, held_out)

    command = " ".join(["python bench/tune_policy.py", *map(shlex.quote, argv or sys.argv[1:])])
    print(f"Command: `{command.strip()}`\n")
    print(
        f"Machine: {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}.\n"
    )
    print("\n".join(trace_table(tuner, [*cases, *(held_out if checked else [])])))
    print_grid(cells, cases, "Sweep")
    if held_cells:
        print_grid(held_cells, held_out, "Held-out spans")
        checked_names = {variant.name for variant in checked}
        both = [item for item in cells if item.variant in checked_names] + held_cells
        print_grid(both, [*cases, *held_out], "Both")
    detailed = [OLD.name, CHOSEN.name, args.variant]
    print("\n" + "\n".join(detail_table([*cells, *held_cells], detailed)))
    if not args.no_headroom:
        print("\nReactive alone with more headroom: vs its default run / vs oracle\n")
        print("\n".join(headroom_table(tuner, cases)))
    total = len(cells) + len(held_cells)
    print(f"\n{total} backtests in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
