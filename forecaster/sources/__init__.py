"""History sources, built by ``build_source`` from the ``kind`` of their settings.

Each kind lives in its own module. The Thanos module is imported only when a Thanos source is
built, so CSV traces work without it.
"""

from __future__ import annotations

from collections.abc import Callable

from forecaster.errors import ConfigError
from forecaster.settings import CsvSourceSettings, ThanosSourceSettings
from forecaster.sources.base import HistorySource
from forecaster.sources.csv import CsvSource

__all__ = ["SOURCE_KINDS", "CsvSource", "HistorySource", "build_source"]


def _build_csv(name: str, settings: CsvSourceSettings | ThanosSourceSettings) -> HistorySource:
    if not isinstance(settings, CsvSourceSettings):
        raise TypeError(f"source {name!r}: expected CsvSourceSettings, got {type(settings)}")
    return CsvSource(settings, key_prefix=f"sources.{name}")


def _build_thanos(name: str, settings: CsvSourceSettings | ThanosSourceSettings) -> HistorySource:
    from forecaster.sources.thanos import ThanosSource

    if not isinstance(settings, ThanosSourceSettings):
        raise TypeError(f"source {name!r}: expected ThanosSourceSettings, got {type(settings)}")
    return ThanosSource(settings, key_prefix=f"sources.{name}")


_BUILDERS: dict[str, Callable[[str, CsvSourceSettings | ThanosSourceSettings], HistorySource]] = {
    "csv": _build_csv,
    "thanos": _build_thanos,
}

SOURCE_KINDS = tuple(sorted(_BUILDERS))


def build_source(name: str, settings: CsvSourceSettings | ThanosSourceSettings) -> HistorySource:
    """Build the source configured under ``sources.<name>``, chosen by ``settings.kind``.

    Raises ConfigError naming ``sources.<name>.kind`` for a kind with no registered source.
    """
    builder = _BUILDERS.get(settings.kind)
    if builder is None:
        raise ConfigError(
            f"sources.{name}.kind", settings.kind, f"one of: {', '.join(SOURCE_KINDS)}"
        )
    return builder(name, settings)
