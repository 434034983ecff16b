"""Credentials and TLS for the Thanos source, read from files or the environment.

A secret is read when a request is prepared, so a rotated token file takes effect on the next
request. A file is read again only when its modification time or size changes. Every secret
read is remembered by ``Secrets`` so that ``redact`` can remove it from any text before it is
logged or put into an error message.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from forecaster.errors import ConfigError
from forecaster.settings import ThanosSourceSettings

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"
USER_AGENT = "peakcast"


@dataclass(frozen=True)
class _CachedFile:
    mtime_ns: int
    size: int
    value: str


class Secrets:
    """Reads the credentials a Thanos source is configured with and redacts them from text.

    ``key_prefix`` is the config path of the source settings, such as ``sources.thanos``,
    so that errors name the full key.
    """

    def __init__(self, settings: ThanosSourceSettings, key_prefix: str = "") -> None:
        self._settings = settings
        self._key_prefix = key_prefix
        self._lock = threading.Lock()
        self._files: dict[Path, _CachedFile] = {}
        self._known: set[str] = set()

    def bearer_token(self) -> str | None:
        """Return the bearer token, or None when none is configured."""
        settings = self._settings
        if settings.bearer_token_file is not None:
            return self._from_file("bearer_token_file", settings.bearer_token_file)
        if settings.bearer_token_env is not None:
            return self._from_env("bearer_token_env", settings.bearer_token_env)
        return None

    def basic_auth(self) -> tuple[str, str] | None:
        """Return the basic-auth user name and password, or None when none is configured."""
        settings = self._settings
        if settings.basic_auth_username is None:
            return None
        if settings.basic_auth_password_file is not None:
            password = self._from_file(
                "basic_auth_password_file", settings.basic_auth_password_file
            )
        elif settings.basic_auth_password_env is not None:
            password = self._from_env("basic_auth_password_env", settings.basic_auth_password_env)
        else:
            return None
        encoded = base64.b64encode(f"{settings.basic_auth_username}:{password}".encode()).decode()
        self._remember(encoded)
        return settings.basic_auth_username, password

    def header_values(self) -> dict[str, str]:
        """Return the headers whose values are read from files."""
        return {
            name: self._from_file(f"header_files.{name}", path)
            for name, path in self._settings.header_files.items()
        }

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret read so far replaced by ``<redacted>``."""
        with self._lock:
            known = sorted(self._known, key=len, reverse=True)
        for secret in known:
            text = text.replace(secret, REDACTED)
        return text

    def _key(self, field: str) -> str:
        return f"{self._key_prefix}.{field}" if self._key_prefix else field

    def _from_file(self, field: str, path: Path) -> str:
        try:
            status = path.stat()
            with self._lock:
                cached = self._files.get(path)
            if cached and (cached.mtime_ns, cached.size) == (status.st_mtime_ns, status.st_size):
                return cached.value
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(self._key(field), str(path), "an existing file") from None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ConfigError(
                self._key(field), str(path), f"a readable UTF-8 text file ({reason})"
            ) from None
        if not value:
            raise ConfigError(self._key(field), str(path), "a file that is not empty")
        with self._lock:
            self._files[path] = _CachedFile(status.st_mtime_ns, status.st_size, value)
        self._remember(value)
        return value

    def _from_env(self, field: str, variable: str) -> str:
        value = os.environ.get(variable, "").strip()
        if not value:
            raise ConfigError(
                self._key(field), variable, "the name of a set, non-empty environment variable"
            )
        self._remember(value)
        return value

    def _remember(self, secret: str) -> None:
        with self._lock:
            self._known.add(secret)


class CredentialAuth(requests.auth.AuthBase):
    """Adds the configured Authorization header and secret headers to each request."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._secrets.bearer_token()
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        basic = self._secrets.basic_auth()
        if basic is not None:
            request = requests.auth.HTTPBasicAuth(*basic)(request)
        request.headers.update(self._secrets.header_values())
        return request

    def __repr__(self) -> str:
        return "CredentialAuth(<redacted>)"


def build_session(settings: ThanosSourceSettings, key_prefix: str = "") -> requests.Session:
    """Create a session with the plain headers, TLS settings and a pool per concurrent request.

    The adapter does no retries of its own: the caller retries, so it can log each attempt.
    """
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers.update(settings.headers)
    session.verify = _verify(settings, key_prefix)
    if settings.client_cert_file is not None:
        cert = _existing(settings.client_cert_file, "client_cert_file", key_prefix)
        if settings.client_key_file is not None:
            key = _existing(settings.client_key_file, "client_key_file", key_prefix)
            session.cert = (cert, key)
        else:
            session.cert = cert
    mount_adapter(session, settings)
    return session


def mount_adapter(session: requests.Session, settings: ThanosSourceSettings) -> None:
    """Mount an adapter without retries and with one pooled connection per concurrent request.

    ``read=False`` keeps a read timeout a ``requests.ReadTimeout`` instead of a connection
    error, as in the default requests adapter.
    """
    adapter = HTTPAdapter(
        max_retries=Retry(total=0, read=False, redirect=False, raise_on_status=False),
        pool_connections=1,
        pool_maxsize=settings.max_concurrent_requests,
    )
    session.mount(settings.url, adapter)


def _verify(settings: ThanosSourceSettings, key_prefix: str) -> bool | str:
    if settings.insecure_skip_verify:
        logger.warning(
            "TLS certificate verification is off for %s (insecure_skip_verify is set)",
            settings.url,
        )
        return False
    if settings.ca_file is not None:
        return _existing(settings.ca_file, "ca_file", key_prefix)
    return True


def _existing(path: Path, field: str, key_prefix: str) -> str:
    if not path.is_file():
        key = f"{key_prefix}.{field}" if key_prefix else field
        raise ConfigError(key, str(path), "an existing PEM file")
    return str(path)
