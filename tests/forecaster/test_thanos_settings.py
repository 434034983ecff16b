"""Thanos source settings: validation at load, and the documented config examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from forecaster.errors import ConfigError
from forecaster.promql import validate_query
from forecaster.settings import ThanosSourceSettings
from scaler.config_loader import load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("thanos-*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_config_is_valid(path: Path) -> None:
    settings = load_settings(path)

    thanos_workloads = [
        workload
        for workload in settings.workloads
        if isinstance(settings.sources[workload.demand.source], ThanosSourceSettings)
    ]
    assert thanos_workloads
    for workload in thanos_workloads:
        source = settings.sources[workload.demand.source]
        assert isinstance(source, ThanosSourceSettings)
        validate_query(
            workload.demand.series, scrape_interval_seconds=source.scrape_interval_seconds
        )


def test_examples_cover_dcgm_vllm_and_triton() -> None:
    assert [path.stem for path in EXAMPLES] == ["thanos-dcgm", "thanos-triton", "thanos-vllm"]


def _with_source(**thanos: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "config" / "peakcast.yaml").read_text(encoding="utf-8"))
    raw["sources"]["metrics"] = {"kind": "thanos", "url": "http://thanos:9090", **thanos}
    return raw


@pytest.mark.parametrize(
    ("thanos", "message"),
    [
        pytest.param(
            {"bearer_token_file": "/t", "bearer_token_env": "T"}, "not both", id="two-tokens"
        ),
        pytest.param({"basic_auth_username": "u"}, "needs basic_auth_password", id="no-password"),
        pytest.param(
            {"basic_auth_password_file": "/p"}, "needs basic_auth_username", id="no-username"
        ),
        pytest.param(
            {"bearer_token_file": "/t", "basic_auth_username": "u", "basic_auth_password_env": "P"},
            "bearer token or basic auth",
            id="token-and-basic",
        ),
        pytest.param(
            {"ca_file": "/ca.pem", "insecure_skip_verify": True}, "not both", id="ca-and-insecure"
        ),
        pytest.param({"client_key_file": "/k.pem"}, "needs client_cert_file", id="key-no-cert"),
        pytest.param(
            {"headers": {"Authorization": "Bearer x"}}, "carries credentials", id="auth-header"
        ),
        pytest.param({"headers": {"bad header": "x"}}, "invalid HTTP header", id="header-name"),
        pytest.param({"url": "ftp://thanos"}, "http:// or https://", id="scheme"),
        pytest.param({"url": "http://thanos:9090/?x=1"}, "query string", id="url-query"),
        pytest.param(
            {"raw_resolution_max_age_seconds": 100, "five_minute_resolution_max_age_seconds": 50},
            "must not be below",
            id="resolution-ages",
        ),
        pytest.param({"max_points_per_request": 11_001}, "11000", id="point-limit"),
        pytest.param({"ignored_warning_patterns": ["("]}, "regular expression", id="pattern"),
        pytest.param({"replica_labels": ["bad-label"]}, "invalid label name", id="replica"),
        pytest.param({"unknown_key": 1}, "no such key", id="unknown-key"),
    ],
)
def test_invalid_settings_rejected(thanos: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_settings(_with_source(**thanos), ROOT / "config")

    assert str(raised.value).startswith("sources.metrics")


def test_url_password_not_echoed() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(_with_source(url="http://peakcast:s3cr3t-pass@thanos:9090"), ROOT)

    assert "credentials in the URL" in str(raised.value)
    assert "s3cr3t-pass" not in str(raised.value)


def test_trailing_slash_removed() -> None:
    settings = ThanosSourceSettings(kind="thanos", url="http://thanos:9090/")

    assert settings.url == "http://thanos:9090"
