"""Config loading: key paths of errors, relative paths, union tags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from forecaster.errors import ConfigError
from scaler.config_loader import DEFAULT_CONFIG, ConfigErrors, format_location, parse_settings


def default_raw() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def errors_of(raw: dict) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as caught:
        parse_settings(raw, DEFAULT_CONFIG.parent)
    return caught.value.errors


def test_location_formats_as_key_path() -> None:
    assert format_location(("workloads", 0, "capacity", "gpus_per_replica")) == (
        "workloads[0].capacity.gpus_per_replica"
    )


def test_relative_csv_path_resolves_from_config_folder() -> None:
    settings = parse_settings(default_raw(), DEFAULT_CONFIG.parent)
    path = settings.sources["servegen"].path
    assert path.is_absolute()
    assert path.exists()


def test_source_error_path_has_no_union_tag() -> None:
    raw = default_raw()
    raw["sources"]["servegen"]["timezone"] = "Mars/Olympus"

    errors = errors_of(raw)

    assert [error.key for error in errors] == ["sources.servegen.timezone"]
    assert errors[0].value == "Mars/Olympus"
    assert "IANA" in errors[0].allowed


def test_every_error_is_reported() -> None:
    raw = default_raw()
    raw["pools"][0]["gpus_per_node"] = 0
    raw["policy"]["cycle_interval_seconds"] = -5

    keys = {error.key for error in errors_of(raw)}

    assert keys == {"pools[0].gpus_per_node", "policy.cycle_interval_seconds"}


def test_root_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(["not", "a", "mapping"], Path("."))
    assert caught.value.key == "<root>"


def test_replica_bounds_must_be_ordered() -> None:
    raw = default_raw()
    raw["workloads"][0]["capacity"]["min_replicas"] = 10
    raw["workloads"][0]["capacity"]["max_replicas"] = 4

    errors = errors_of(raw)

    assert errors[0].key == "workloads[0].capacity"
    assert "min_replicas (10)" in errors[0].allowed
