"""Positions, hold intervals and the draws that decide when a position becomes ready.

Nodes of a pool (and replicas of a workload) are interchangeable and released newest first, so
they form a stack: position ``k`` (1-based) is held at every minute where at least ``k`` are
requested. A maximal run of such minutes is a hold interval.

A fresh request for position ``k`` at minute ``s`` starts a chain of attempts. Each attempt is
fulfilled at once, or when the stockout block it falls in ends. The node then boots and
initialises its GPUs. A failed or timed-out initialisation releases the node at the GPU-init
deadline and requests a replacement. Attempt ``n`` of position ``k`` draws with indices
``(k, e, n)``, where ``e`` is the redraw interval of the chain's request, so the draws do not
depend on the policy.

No overtaking: a request is never ready later than a fresh request for the same position made
at a later minute would be. Within a redraw interval this is true by construction. At each
interval boundary, a position that is not ready yet is requested afresh when the fresh chain
would be ready sooner (the old node is released then). So the ready time ``R(k, s)`` of a hold
that starts at ``s`` never decreases in ``s``, and holding a node longer never makes capacity
arrive later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scaler.core.capacity import IntArray
from scaler.core.draws import draw_seconds, stream_key, uniforms, whole_minutes
from scaler.core.phases import PhaseModel

BoolArray = npt.NDArray[np.bool_]

# A minute after the end of any run: "never ready" or "never released".
NEVER = 2**62
# Ready before the first minute: the position belongs to the initial state.
BEFORE_RUN = -1
# Draws per chain. A chain whose first 32 initialisations all fail is never ready, and its
# replacements keep failing and being billed while the position is held. At a failure
# probability of 0.5 that is one chain in about four billion.
MAX_ATTEMPTS = 32


@dataclass(frozen=True)
class HoldIntervals:
    """Hold intervals ``[start, end]`` (inclusive) per position, sorted by position and start.

    ``initial`` marks intervals of the initial state: held since before the first minute.
    """

    position: IntArray
    start: IntArray
    end: IntArray
    initial: BoolArray


def _expand(low: IntArray, high: IntArray) -> tuple[IntArray, IntArray]:
    """Return (position, minute) for positions low+1..high at each minute where high > low."""
    rising = np.flatnonzero(high > low)
    base = low[rising]
    counts = high[rising] - base
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(base, counts) + offsets + 1, np.repeat(rising, counts)


def hold_intervals(held: npt.ArrayLike, before: int) -> HoldIntervals:
    """Split a per-minute held count into hold intervals; ``before`` is held before minute 0."""
    counts = np.asarray(held, dtype=np.int64)
    if len(counts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return HoldIntervals(empty, empty, empty, np.zeros(0, dtype=bool))
    previous = np.concatenate([[before], counts[:-1]])
    following = np.concatenate([counts[1:], [0]])
    start_position, start = _expand(previous, counts)
    end_position, end = _expand(following, counts)
    carried = np.arange(1, min(before, int(counts[0])) + 1, dtype=np.int64)
    start_position = np.concatenate([carried, start_position])
    start = np.concatenate([np.zeros(len(carried), dtype=np.int64), start])
    initial = np.concatenate(
        [np.ones(len(carried), dtype=bool), np.zeros(len(start) - len(carried), dtype=bool)]
    )
    by_start = np.lexsort((start, start_position))
    by_end = np.lexsort((end, end_position))
    return HoldIntervals(
        position=start_position[by_start],
        start=start[by_start],
        end=end[by_end],
        initial=initial[by_start],
    )


@dataclass(frozen=True)
class Attempts:
    """Every attempt of a batch of chains, in no particular order.

    ``ready`` is NEVER for a failed attempt and ``released`` is NEVER for one that succeeded.
    ``phase_minutes`` is the drawn phase (both parts), rounded up to whole minutes. ``attempt``
    is 0 for a chain's first node and n for its n-th replacement.
    """

    chain: IntArray
    attempt: IntArray
    requested: IntArray
    fulfilled: IntArray
    ready: IntArray
    released: IntArray
    failed: BoolArray
    phase_minutes: IntArray

    @staticmethod
    def concatenate(parts: list[Attempts]) -> Attempts:
        """Join batches whose chain indices are already distinct."""
        return Attempts(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in _ATTEMPT_FIELDS)
        )


_ATTEMPT_FIELDS = (
    "chain",
    "attempt",
    "requested",
    "fulfilled",
    "ready",
    "released",
    "failed",
    "phase_minutes",
)


class PositionDraws:
    """The chains of one pool or workload on one run of ``minutes`` minutes."""

    def __init__(self, model: PhaseModel, seed: int, redraw_minutes: int, minutes: int) -> None:
        self.model = model
        self.redraw_minutes = redraw_minutes
        self.minutes = minutes
        self._keys = {
            part: stream_key(seed, *model.stream, part)
            for part in ("first", "second", "failure", "stockout")
        }
        self._epochs = max(1, -(-minutes // redraw_minutes))
        # Ready minute of a fresh chain requested at each interval boundary, per position, and
        # its minimum over this and every later boundary (one more column: no later boundary).
        self._boundary = np.full((1, self._epochs), NEVER, dtype=np.int64)
        self._boundary_suffix = _suffix_min(self._boundary)

    def fulfil(self, requested: IntArray) -> IntArray:
        """Return the minute each request is fulfilled: at once, or when its stockout ends."""
        fulfilled = np.array(requested, dtype=np.int64, copy=True)
        probability = self.model.stockout_probability
        if probability <= 0:
            return fulfilled
        block_minutes = self.model.stockout_minutes
        waiting = np.arange(len(fulfilled))
        while waiting.size:
            block = fulfilled[waiting] // block_minutes
            out = uniforms(self._keys["stockout"], block) < probability
            waiting = waiting[out]
            fulfilled[waiting] = (block[out] + 1) * block_minutes
        return fulfilled

    def chains(
        self,
        positions: IntArray,
        epochs: IntArray,
        requested: IntArray,
        until: IntArray | None = None,
    ) -> tuple[IntArray, Attempts]:
        """Run fresh chains and return the ready minute of each and all their attempts.

        A chain whose first MAX_ATTEMPTS attempts all fail is never ready (NEVER). Its attempts
        are listed while they are requested before ``until`` (per chain), cycling through the
        same draws; without ``until`` the listing stops there.
        """
        ready = np.full(len(positions), NEVER, dtype=np.int64)
        parts: list[Attempts] = []
        active = np.arange(len(positions))
        request = np.asarray(requested, dtype=np.int64)
        attempt = 0
        while active.size:
            draw = attempt % MAX_ATTEMPTS
            part, request = self._attempt(positions[active], epochs[active], request, draw)
            parts.append(
                dataclasses.replace(part, chain=active, attempt=part.attempt + attempt - draw)
            )
            succeeded = ~part.failed
            ready[active[succeeded]] = part.ready[succeeded]
            active = active[part.failed]
            attempt += 1
            if attempt >= MAX_ATTEMPTS:
                if until is None:
                    break
                going_on = request < until[active]
                active, request = active[going_on], request[going_on]
        if not parts:
            return ready, _no_attempts()
        return ready, Attempts.concatenate(parts)

    def _attempt(
        self, positions: IntArray, epochs: IntArray, requested: IntArray, attempt: int
    ) -> tuple[Attempts, IntArray]:
        """Draw one attempt per chain; return it and the replacement requests of failures."""
        model = self.model
        fulfilled = self.fulfil(requested)
        first = draw_seconds(model.first, self._keys["first"], positions, epochs, attempt)
        second = draw_seconds(model.second, self._keys["second"], positions, epochs, attempt)
        failed = second > model.timeout_seconds
        if model.failure_probability > 0:
            failure = uniforms(self._keys["failure"], positions, epochs, attempt)
            failed |= failure < model.failure_probability
        phase = whole_minutes(first + second)
        ready = np.where(failed, NEVER, fulfilled + phase)
        released = np.full(len(positions), NEVER, dtype=np.int64)
        released[failed] = fulfilled[failed] + whole_minutes(first[failed] + model.timeout_seconds)
        part = Attempts(
            chain=np.arange(len(positions)),
            attempt=np.full(len(positions), attempt, dtype=np.int64),
            requested=requested,
            fulfilled=fulfilled,
            ready=ready,
            released=released,
            failed=failed,
            phase_minutes=phase,
        )
        return part, released[failed]

    def boundary_ready(self, positions: IntArray, epochs: IntArray) -> IntArray:
        """Return the ready minute of a fresh chain requested at the start of each interval."""
        self._extend_boundary(int(positions.max(initial=0)))
        return self._boundary[positions, epochs]

    def ready(self, positions: npt.ArrayLike, requested: npt.ArrayLike, initial: int) -> IntArray:
        """Return R(k, s): when a hold of position k from minute s is ready, however long.

        A hold from minute 0 of a position within the initial state is ready BEFORE_RUN.
        """
        position = np.asarray(positions, dtype=np.int64)
        request = np.asarray(requested, dtype=np.int64)
        position, request = np.broadcast_arrays(position, request)
        epoch = request // self.redraw_minutes
        ready, _ = self.chains(position.ravel(), epoch.ravel(), request.ravel())
        self._extend_boundary(int(position.max(initial=0)))
        later = np.minimum(epoch.ravel() + 1, self._epochs)
        ready = np.minimum(ready, self._boundary_suffix[position.ravel(), later])
        carried = (request.ravel() == 0) & (position.ravel() <= initial)
        return np.where(carried, BEFORE_RUN, ready).reshape(position.shape)

    def _extend_boundary(self, top: int) -> None:
        known = len(self._boundary) - 1
        if top <= known:
            return
        positions = np.repeat(np.arange(known + 1, top + 1), self._epochs - 1)
        epochs = np.tile(np.arange(1, self._epochs), top - known)
        ready, _ = self.chains(positions, epochs, epochs * self.redraw_minutes)
        rows = np.full((top - known, self._epochs), NEVER, dtype=np.int64)
        rows[:, 1:] = ready.reshape(top - known, self._epochs - 1)
        self._boundary = np.concatenate([self._boundary, rows])
        self._boundary_suffix = _suffix_min(self._boundary)


def _suffix_min(table: IntArray) -> IntArray:
    """Return the minimum over each column and every later one, plus a NEVER column."""
    suffix = np.minimum.accumulate(table[:, ::-1], axis=1)[:, ::-1]
    return np.concatenate([suffix, np.full((len(table), 1), NEVER, dtype=np.int64)], axis=1)


def _no_attempts() -> Attempts:
    empty = np.zeros(0, dtype=np.int64)
    return Attempts(empty, empty, empty, empty, empty, empty, np.zeros(0, dtype=bool), empty)
