"""docs/CONFIG.md lists every setting the code accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "scripts" / "config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_is_current() -> None:
    script = load_script()
    text = script.CONFIG_DOC.read_text(encoding="utf-8")

    # If this fails, run: .venv/bin/python scripts/config_reference.py
    assert script.updated_text(text, script.render()) == text


def test_config_reference_names_every_group() -> None:
    section = load_script().render()
    for group in ("PolicySettings", "ThanosSourceSettings", "PoolSettings", "ServiceSettings"):
        assert f"### `{group}`" in section
