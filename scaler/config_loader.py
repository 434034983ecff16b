"""Load and validate the YAML configuration, turning every problem into a ``ConfigError``."""

from __future__ import annotations

import difflib
import functools
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from forecaster.errors import MISSING, ConfigError
from forecaster.settings import CsvSourceSettings, ThanosSourceSettings
from scaler.settings import InvalidReferenceError, Settings

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "peakcast.yaml"
WORKING_DIR_CONFIG = Path("config") / "peakcast.yaml"


def default_config_path() -> Path:
    """Return the config used without ``--config``.

    That is ``config/peakcast.yaml`` in the working directory, else the one of the source
    checkout the package runs from. An installed wheel has no checkout, so without a config in
    the working directory this raises a ConfigError that requests ``--config``.
    """
    for candidate in (WORKING_DIR_CONFIG, DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "--config",
        "not given",
        f"the path of a config file, because there is no {WORKING_DIR_CONFIG} in the working "
        "directory",
    )


class ConfigErrors(ConfigError):
    """Several config errors found in one load; ``errors`` contains each one."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.key, first.value, first.allowed)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def format_location(location: Sequence[int | str]) -> str:
    """Format a pydantic error location as a key path such as ``pools[1].max_nodes``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<root>"


def _without_union_tags(location: Sequence[int | str], raw: Any) -> list[int | str]:
    """Drop the tags pydantic inserts for discriminated unions (``kind: csv`` adds ``csv``).

    A part is a tag when the config at that point has no such key but is a mapping whose
    discriminator ('kind' or 'mode') has that value.
    """
    kept: list[int | str] = []
    current = raw
    for part in location:
        if (
            isinstance(part, str)
            and isinstance(current, dict)
            and part not in current
            and part in (current.get("kind"), current.get("mode"))
        ):
            continue
        kept.append(part)
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            current = None
    return kept


def _from_validation_error(error: ValidationError, raw: Any) -> ConfigErrors:
    found: list[ConfigError] = []
    for detail in error.errors(include_url=False):
        location = _without_union_tags(detail["loc"], raw)
        message = str(detail["msg"]).removeprefix("Value error, ")
        value = detail.get("input")
        if detail["type"] == "extra_forbidden":
            message = "no such key; remove it or check its spelling"
            guess = _close_key(location)
            if guess is not None:
                message += f" (did you mean {guess!r}?)"
        elif detail["type"] == "missing":
            message = "a value is required"
            value = MISSING
        else:
            message += _unit_hint(location, str(detail["type"]))
        context = detail.get("ctx") or {}
        if detail["type"] in ("union_tag_not_found", "union_tag_invalid"):
            # Name the discriminator key ('kind' or 'mode') itself, not the entry holding it.
            tag = str(context.get("discriminator", "")).strip("'")
            location = [*location, tag]
            value = context.get("tag")
            if detail["type"] == "union_tag_not_found":
                message = "a value is required"
            else:
                message = f"one of {context.get('expected_tags')}"
        key = format_location(location)
        cause = context.get("error")
        if isinstance(cause, InvalidReferenceError):
            # Raised by a check of the whole config, with the key path of the bad value.
            key, value, message = cause.key, cause.value, str(cause)
        elif not location:
            key = _key_from_message(message, raw) or key
        elif isinstance(value, dict):
            # A check of a whole entry ("min_nodes (13) must not exceed max_nodes (12)") names
            # the first key of its message, so point at that key and its value. Only numbers
            # are shown this way: a text value such as a URL may carry a credential.
            named = _LEADING_FIELD.match(message)
            field_value = value.get(named.group(1)) if named is not None else None
            if named is not None and isinstance(field_value, int | float):
                key = f"{key}.{named.group(1)}"
                value = field_value
        if isinstance(value, dict | list):
            value = "<" + type(value).__name__ + ">"
        found.append(ConfigError(key, value, message))
    return ConfigErrors(found)


_LEADING_KEY = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*)\b")
_LEADING_FIELD = re.compile(r"^([a-z_]+)\b")
_FRACTION_NAMES = ("utilization", "coverage", "level", "ratio", "quantile")


def _unit_hint(location: Sequence[int | str], error_type: str) -> str:
    """Return a hint on the unit a key takes, for a type or range error, else ''."""
    name = next((part for part in reversed(location) if isinstance(part, str)), "")
    if name.endswith("_seconds") and error_type.startswith("int_"):
        return " (a whole number of seconds, e.g. 420 for 7 minutes)"
    if any(word in name for word in _FRACTION_NAMES) and error_type in (
        "less_than_equal",
        "less_than",
    ):
        return " (a fraction, e.g. 0.8 for 80 %)"
    return ""


def _close_key(location: Sequence[int | str]) -> str | None:
    """Return the known setting name closest to the unknown key at the end of ``location``."""
    unknown = location[-1] if location else None
    if not isinstance(unknown, str):
        return None
    matches = difflib.get_close_matches(unknown, _setting_names(), n=1, cutoff=0.8)
    return matches[0] if matches else None


@functools.cache
def _setting_names() -> tuple[str, ...]:
    """Return every field name of the settings models, for spelling suggestions."""
    names: set[str] = set()
    pending: list[type[BaseModel]] = [Settings]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            names.add(name)
            pending.extend(_models_in(field.annotation))
    return tuple(sorted(names))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Return the pydantic models an annotation refers to (inside lists, dicts, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found.extend(_models_in(argument))
    return found


_LEADING_ENTRY = re.compile(r"^(pool|workload) '([^']+)'")


def _key_from_message(message: str, raw: Any) -> str | None:
    """Find the key path a whole-config check names at the start of its message.

    Checks of the whole config have no location of their own. Their messages start with a key
    path ("guardrails.floor_ttl_seconds (3600) must ...") or with the entry they are about
    ("workload 'llm': ..."), which becomes ``workloads[<index>]``.
    """
    entry = _LEADING_ENTRY.match(message)
    if entry is not None and isinstance(raw, dict):
        section = f"{entry.group(1)}s"
        items = raw.get(section)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict) and item.get("name") == entry.group(2):
                    return f"{section}[{index}]"
        return section
    leading = _LEADING_KEY.match(message)
    if leading is not None and leading.group(1).split(".")[0] in Settings.model_fields:
        return leading.group(1)
    return None


def parse_settings(raw: Any, base_dir: Path) -> Settings:
    """Validate an already-parsed config mapping; relative paths are resolved from ``base_dir``."""
    if not isinstance(raw, dict):
        raise ConfigError("<root>", type(raw).__name__, "a mapping of top-level keys")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        raise _from_validation_error(error, raw) from None

    resolved = {name: _resolve_paths(source, base_dir) for name, source in settings.sources.items()}
    return settings.model_copy(update={"sources": resolved})


def _resolve_paths(
    source: CsvSourceSettings | ThanosSourceSettings, base_dir: Path
) -> CsvSourceSettings | ThanosSourceSettings:
    """Read relative file paths of a source (trace, token, CA bundle) from ``base_dir``."""

    def resolve(path: Path | None) -> Path | None:
        if path is None or path.is_absolute():
            return path
        return (base_dir / path).resolve()

    if isinstance(source, CsvSourceSettings):
        return source.model_copy(update={"path": resolve(source.path)})
    file_fields = (
        "bearer_token_file",
        "basic_auth_password_file",
        "ca_file",
        "client_cert_file",
        "client_key_file",
    )
    update: dict[str, object] = {name: resolve(getattr(source, name)) for name in file_fields}
    update["header_files"] = {header: resolve(path) for header, path in source.header_files.items()}
    return source.model_copy(update=update)


def load_settings(path: Path | None = None) -> Settings:
    """Read the YAML file at ``path`` (default: ``default_config_path()``) and validate it."""
    config_path = Path(path) if path is not None else default_config_path()
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("--config", str(config_path), "an existing YAML file") from None
    except OSError as error:
        raise ConfigError("--config", str(config_path), f"a readable file ({error})") from error
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError("--config", str(config_path), _yaml_problem(error)) from None
    return parse_settings(raw, config_path.resolve().parent)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Describe a YAML syntax error with its line and column in the file."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return f"valid YAML ({error})"
    return f"valid YAML; line {mark.line + 1}, column {mark.column + 1}: {problem}"
