"""The thanos source over HTTPS: a CA bundle, the explicit insecure flag and mutual TLS.

Certificates for 127.0.0.1 are made with the openssl command line for each test module.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import ConfigError
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.thanos import ThanosSource
from tests.servers.thanos_replay import RecordedRequest, Reply, ThanosReplay, matrix_series, success

MINUTE = pd.Timedelta(minutes=1)
NOW = pd.Timestamp("2024-06-15T00:00:00Z")
START = NOW - 10 * MINUTE


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True)


def _signed(name: str, common_name: str, extensions: str, folder: Path) -> None:
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.csr", "-subj", f"/CN={common_name}", cwd=folder,
    )  # fmt: skip
    (folder / f"{name}.ext").write_text(extensions, encoding="utf-8")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=peakcast test CA", cwd=folder,
    )  # fmt: skip
    _signed("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\n", folder)
    _signed("client", "peakcast", "extendedKeyUsage=clientAuth\n", folder)
    return Certificates(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
    )


def _ok(request: RecordedRequest) -> Reply:
    times = request.grid()
    return Reply(body=success([matrix_series({}, times, np.full(len(times), 1.5))]))


def _server_context(certificates: Certificates, require_client: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    if require_client:
        context.load_verify_locations(certificates.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def https_replay(certificates: Certificates) -> Iterator[ThanosReplay]:
    with ThanosReplay(_ok, tls=_server_context(certificates, require_client=False)) as replay:
        yield replay


def _source(url: str, **overrides: object) -> ThanosSource:
    values: dict[str, object] = {"kind": "thanos", "url": url, "retry_backoff_seconds": 0}
    values.update(overrides)
    return ThanosSource(ThanosSourceSettings.model_validate(values), clock=lambda: NOW)


def test_ca_bundle_verifies_server(https_replay: ThanosReplay, certificates: Certificates) -> None:
    with _source(https_replay.url, ca_file=certificates.ca) as thanos:
        history = thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

    assert https_replay.url.startswith("https://")
    assert history.values.eq(1.5).all()


def test_unknown_ca_is_config_error(https_replay: ThanosReplay) -> None:
    with (
        _source(https_replay.url, max_retries=3) as thanos,
        pytest.raises(ConfigError, match="CA bundle") as raised,
    ):
        thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

    assert raised.value.key == "ca_file"
    assert https_replay.requests == []


@pytest.mark.filterwarnings(
    # urllib3 warns on every unverified HTTPS request; this test turns verification off on
    # purpose.
    "ignore::urllib3.exceptions.InsecureRequestWarning"
)
def test_insecure_flag_skips_verification(https_replay: ThanosReplay) -> None:
    with _source(https_replay.url, insecure_skip_verify=True) as thanos:
        history = thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

    assert history.values.eq(1.5).all()


def test_client_certificate_for_mutual_tls(certificates: Certificates) -> None:
    context = _server_context(certificates, require_client=True)
    with (
        ThanosReplay(_ok, tls=context) as replay,
        _source(
            replay.url,
            ca_file=certificates.ca,
            client_cert_file=certificates.client_cert,
            client_key_file=certificates.client_key,
        ) as thanos,
    ):
        history = thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

    assert history.values.eq(1.5).all()


def test_missing_ca_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an existing PEM file") as raised:
        _source("https://127.0.0.1:9", ca_file=tmp_path / "absent.pem")

    assert raised.value.key == "ca_file"
