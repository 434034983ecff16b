"""Optional capabilities a fitted model may offer beyond the ``FittedModel`` protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd

from forecaster.models.base import FittedModel


@runtime_checkable
class Refilterable(Protocol):
    """A fitted model that can rebuild its state from a prefix of its training series.

    ``refilter(y)`` keeps the estimated parameters and returns a model that has seen only
    ``y``, which must start at the first step of the series the model was fitted on. The
    engine uses it to produce rolling-origin forecasts without re-estimating parameters.
    """

    def refilter(self, y: pd.Series) -> FittedModel: ...


def model_notes(fitted: object) -> tuple[str, ...]:
    """Return the notes a fitted model attached (dropped seasons, fallbacks), if any."""
    notes = getattr(fitted, "notes", ())
    return tuple(notes)
