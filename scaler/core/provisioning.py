"""Replay held positions through their draws: ready counts, billed nodes and provisioning events.

``scaler.core.positions`` defines positions, chains and the no-overtaking rule. Here a held
series (requested nodes of a burst pool, or running replicas of a workload) becomes:

- the per-minute count of ready positions (usable nodes, or serving replicas);
- for nodes, the billed nodes per minute and each node's billed lifetime, rounded up to
  ``simulator.billing_granularity_seconds``;
- counts of failed GPU initialisations, requests delayed by a stockout, requested node-minutes
  left unfulfilled, and nodes replaced at a redraw boundary;
- a log of every node with its request, fulfilment, ready and release minutes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from scaler.core.capacity import IntArray
from scaler.core.positions import (
    BEFORE_RUN,
    NEVER,
    Attempts,
    BoolArray,
    HoldIntervals,
    PositionDraws,
    hold_intervals,
)


@dataclass(frozen=True)
class NodeLog:
    """Every node of one burst pool billed or requested during the run, one row per node.

    Minutes count from the first simulated minute. ``fulfilled`` is NEVER for a request still
    waiting when it was dropped. ``usable`` is NEVER for a node that never became usable while
    held. ``released`` is the first minute not billed, or the run's length for a node still
    billed at the end. ``phase_minutes`` is the drawn node phase, and ``attempt`` counts the failed
    nodes this one replaces. Nodes of the initial state come first, with ``requested``,
    ``fulfilled`` and ``usable`` at BEFORE_RUN and a phase of 0.
    """

    position: IntArray
    attempt: IntArray
    requested: IntArray
    fulfilled: IntArray
    usable: IntArray
    released: IntArray
    failed: BoolArray
    phase_minutes: IntArray


@dataclass(frozen=True)
class ProvisioningEvents:
    """Counts of one pool's provisioning problems over the run."""

    failed_gpu_inits: int = 0
    stockout_delayed_requests: int = 0
    unmet_node_minutes: int = 0
    redrawn_nodes: int = 0


@dataclass(frozen=True)
class Segments:
    """Chains of the hold intervals: one per fresh request, cut where the hold or a swap ends."""

    interval: IntArray
    requested: IntArray
    ready: IntArray
    cut: IntArray  # first minute the chain no longer runs
    attempts: Attempts  # ``chain`` indexes these segments


def run_segments(draws: PositionDraws, holds: HoldIntervals) -> Segments:
    """Start one chain per fresh hold and apply the swaps at redraw boundaries."""
    redraw = draws.redraw_minutes
    fresh = np.flatnonzero(~holds.initial)
    interval = fresh
    requested = holds.start[fresh]
    cut = holds.end[fresh] + 1
    ready, first = draws.chains(holds.position[fresh], requested // redraw, requested, cut)
    boundary = (requested // redraw + 1) * redraw
    parts = [first]

    # Each pass looks at the next boundary of every chain that is still held and not ready.
    check = np.arange(len(fresh))
    while check.size:
        owner = interval[check]
        at = boundary[check]
        live = (at <= holds.end[owner]) & (at < ready[check])
        check, owner, at = check[live], owner[live], at[live]
        if check.size == 0:
            break
        sooner = draws.boundary_ready(holds.position[owner], at // redraw) < ready[check]
        boundary[check[~sooner]] += redraw

        # Swapped: the old chain ends at the boundary and a fresh one starts there.
        cut[check[sooner]] = at[sooner]
        owner, at = owner[sooner], at[sooner]
        until = holds.end[owner] + 1
        new_ready, new_attempts = draws.chains(holds.position[owner], at // redraw, at, until)
        offset = len(interval)
        parts.append(_shift_chains(new_attempts, offset))
        interval = np.concatenate([interval, owner])
        requested = np.concatenate([requested, at])
        ready = np.concatenate([ready, new_ready])
        cut = np.concatenate([cut, until])
        boundary = np.concatenate([boundary, at + redraw])
        check = np.concatenate([check[~sooner], offset + np.arange(len(owner))])
    return Segments(interval, requested, ready, cut, Attempts.concatenate(parts))


def _shift_chains(attempts: Attempts, offset: int) -> Attempts:
    return dataclasses.replace(attempts, chain=attempts.chain + offset)


def interval_ready(holds: HoldIntervals, segments: Segments) -> IntArray:
    """Return when each hold interval becomes ready (its last chain's ready minute)."""
    ready = np.full(len(holds.position), NEVER, dtype=np.int64)
    np.minimum.at(ready, segments.interval, segments.ready)
    return np.where(holds.initial, BEFORE_RUN, ready)


def ready_counts(holds: HoldIntervals, ready: IntArray, minutes: int) -> IntArray:
    """Count, per minute, the held positions that are ready."""
    first = np.maximum(ready, holds.start)
    counted = first <= holds.end
    return _count_spans(first[counted], holds.end[counted] + 1, minutes)


def _count_spans(starts: IntArray, stops: IntArray, minutes: int) -> IntArray:
    """Count, per minute, the spans [start, stop) that cover it, clipped to the run."""
    starts = np.clip(starts, 0, minutes)
    stops = np.clip(stops, 0, minutes)
    keep = starts < stops
    change = np.bincount(starts[keep], minlength=minutes + 1) - np.bincount(
        stops[keep], minlength=minutes + 1
    )
    return np.cumsum(change[:minutes]).astype(np.int64)


@dataclass(frozen=True)
class PoolRun:
    """A burst pool replayed through its draws."""

    usable: IntArray
    billed: IntArray
    billed_seconds: int
    events: ProvisioningEvents
    log: NodeLog


def run_pool(
    draws: PositionDraws, requested: IntArray, before: int, granularity_seconds: int
) -> PoolRun:
    """Replay a burst pool's requested nodes per minute; ``before`` nodes exist at the start."""
    minutes = len(requested)
    holds = hold_intervals(requested, before)
    segments = run_segments(draws, holds)
    ready = interval_ready(holds, segments)
    attempts = segments.attempts
    cut = segments.cut[attempts.chain]
    happened = attempts.requested < cut
    served = happened & (attempts.fulfilled < cut)
    stop = np.minimum(attempts.released, cut)

    carried = holds.initial
    starts = np.concatenate([holds.start[carried], attempts.fulfilled[served]])
    stops = np.concatenate([holds.end[carried] + 1, stop[served]])
    billed = _count_spans(starts, stops, minutes)
    lifetimes = np.clip(stops, 0, minutes) - np.clip(starts, 0, minutes)
    billed_seconds = _rounded_seconds(lifetimes[lifetimes > 0], granularity_seconds)

    waited = np.minimum(attempts.fulfilled, cut)[happened]
    events = ProvisioningEvents(
        failed_gpu_inits=int(np.count_nonzero(attempts.failed & (attempts.released < cut))),
        stockout_delayed_requests=int(
            np.count_nonzero(happened & (attempts.fulfilled > attempts.requested))
        ),
        unmet_node_minutes=int(
            (np.clip(waited, 0, minutes) - np.clip(attempts.requested[happened], 0, minutes)).sum()
        ),
        redrawn_nodes=len(segments.interval) - int(np.count_nonzero(~holds.initial)),
    )
    log = _node_log(holds, segments, happened, served, stop, minutes)
    return PoolRun(
        usable=ready_counts(holds, ready, minutes),
        billed=billed,
        billed_seconds=billed_seconds,
        events=events,
        log=log,
    )


def _rounded_seconds(lifetime_minutes: IntArray, granularity_seconds: int) -> int:
    """Sum lifetimes in seconds, each rounded up to a multiple of the billing granularity."""
    seconds = lifetime_minutes.astype(np.int64) * 60
    rounded = -(-seconds // granularity_seconds) * granularity_seconds
    return int(rounded.sum())


def _node_log(
    holds: HoldIntervals,
    segments: Segments,
    happened: BoolArray,
    served: BoolArray,
    stop: IntArray,
    minutes: int,
) -> NodeLog:
    attempts = segments.attempts
    cut = segments.cut[attempts.chain]
    usable = np.where(served & (attempts.ready < cut), attempts.ready, NEVER)
    released = np.where(served, np.minimum(stop, minutes), NEVER)
    rows = np.flatnonzero(happened)
    order = rows[np.lexsort((attempts.requested[rows], attempts.chain[rows]))]
    carried = np.flatnonzero(holds.initial)
    before = np.full(len(carried), BEFORE_RUN, dtype=np.int64)
    return NodeLog(
        position=np.concatenate(
            [holds.position[carried], holds.position[segments.interval[attempts.chain[order]]]]
        ),
        attempt=np.concatenate([np.zeros(len(carried), dtype=np.int64), attempts.attempt[order]]),
        requested=np.concatenate([before, attempts.requested[order]]),
        fulfilled=np.concatenate([before, np.where(served, attempts.fulfilled, NEVER)[order]]),
        usable=np.concatenate([before, usable[order]]),
        released=np.concatenate([np.minimum(holds.end[carried] + 1, minutes), released[order]]),
        failed=np.concatenate(
            [
                np.zeros(len(carried), dtype=bool),
                (attempts.failed & (attempts.released < cut))[order],
            ]
        ),
        phase_minutes=np.concatenate(
            [np.zeros(len(carried), dtype=np.int64), attempts.phase_minutes[order]]
        ),
    )


def run_replicas(draws: PositionDraws, running: IntArray, before: int) -> IntArray:
    """Return serving replicas per minute for a workload's running replicas per minute."""
    holds = hold_intervals(running, before)
    segments = run_segments(draws, holds)
    return ready_counts(holds, interval_ready(holds, segments), len(running))
