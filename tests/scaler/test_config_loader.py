"""Config loading: key paths of errors, relative paths, union tags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from forecaster.errors import ConfigError
from scaler import config_loader
from scaler.config_loader import (
    DEFAULT_CONFIG,
    ConfigErrors,
    default_config_path,
    format_location,
    load_settings,
    parse_settings,
)


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

    assert errors[0].key == "workloads[0].capacity.min_replicas"
    assert errors[0].value == 10
    assert "min_replicas (10)" in errors[0].allowed


def test_missing_key_says_missing() -> None:
    raw = default_raw()
    del raw["pools"][1]["gpus_per_node"]

    errors = errors_of(raw)

    assert str(errors[0]) == "pools[1].gpus_per_node: missing: a value is required"


def test_misspelt_key_gets_a_suggestion() -> None:
    raw = default_raw()
    raw["pools"][1]["node_provisionning_seconds"] = 900

    errors = errors_of(raw)

    assert errors[0].key == "pools[1].node_provisionning_seconds"
    assert errors[0].allowed.endswith("(did you mean 'node_provisioning_seconds'?)")


@pytest.mark.parametrize(
    ("path", "value", "hint"),
    [
        (("workloads", 0, "workload_start_seconds"), "7m", "a whole number of seconds"),
        (("workloads", 0, "capacity", "target_utilization"), 80, "a fraction, e.g. 0.8"),
    ],
)
def test_unit_errors_name_the_unit(path: tuple, value: object, hint: str) -> None:
    raw = default_raw()
    parent = raw
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value

    errors = errors_of(raw)

    assert hint in errors[0].allowed


def test_yaml_error_names_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("version: 1\npools:\n  - name: a\n   kind: burst\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(config)

    assert "line 4, column 4" in raised.value.allowed


def test_default_config_prefers_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "peakcast.yaml").write_text(DEFAULT_CONFIG.read_text())
    monkeypatch.chdir(tmp_path)

    assert default_config_path().resolve() == tmp_path / "config" / "peakcast.yaml"


def test_installed_package_without_config_asks_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed wheel has no source checkout next to the package.
    monkeypatch.setattr(config_loader, "DEFAULT_CONFIG", tmp_path / "absent" / "peakcast.yaml")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.key == "--config"
    assert "no config/peakcast.yaml in the working directory" in raised.value.allowed
