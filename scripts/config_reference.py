"""Write the generated settings reference into docs/CONFIG.md from the pydantic models.

Every settings class is walked from ``Settings`` down; each gets a table of its keys with
type, default and description, so the reference cannot drift from the code. Run it after
changing a setting; tests/scaler/test_config_reference.py fails when the file is stale.

    .venv/bin/python scripts/config_reference.py [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DOC = ROOT / "docs" / "CONFIG.md"
START_MARKER = "<!-- settings-reference:start -->"
END_MARKER = "<!-- settings-reference:end -->"


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """Return the settings classes an annotation refers to (through unions, lists, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found.extend(_models_in(argument))
    return found


def _type_name(annotation: object) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    # Discriminated unions: keep the union, drop pydantic's FieldInfo.
    text = re.sub(r"Annotated\[(.*?), FieldInfo\(.*?\)\]", r"\1", text)
    # Module paths of classes: 'scaler.settings_guardrails.ClusterSettings' -> 'ClusterSettings'.
    return re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Za-z_])", "", text)


def _default(field: FieldInfo) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    else:
        return "required"
    if isinstance(value, BaseModel):
        return "(see its table)"
    return f"`{value!r}`" if value not in ("", None) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """Return the reference section: one table per settings class reachable from Settings."""
    from scaler.settings import Settings

    seen: list[type[BaseModel]] = []
    queue: list[type[BaseModel]] = [Settings]
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            queue.extend(m for m in _models_in(field.annotation) if m not in seen)

    lines = [START_MARKER, "## Settings reference (generated)", ""]
    lines.append(
        "Generated from the settings classes by `scripts/config_reference.py`; do not edit by hand."
    )
    for model in seen:
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        lines += ["", f"### `{model.__name__}`", ""]
        if doc:
            lines += [doc, ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            lines.append(
                f"| `{key}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | "
                f"{_cell(field.description or '')} |"
            )
    lines.append(END_MARKER)
    return "\n".join(lines)


def updated_text(text: str, section: str) -> str:
    if START_MARKER in text and END_MARKER in text:
        before = text[: text.index(START_MARKER)]
        after = text[text.index(END_MARKER) + len(END_MARKER) :]
        return before + section + after
    return text.rstrip("\n") + "\n\n" + section + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="Exit 1 if docs/CONFIG.md is stale.")
    args = parser.parse_args(argv)
    text = CONFIG_DOC.read_text(encoding="utf-8")
    new = updated_text(text, render())
    if args.check:
        if new != text:
            print(
                "docs/CONFIG.md is stale: run python scripts/config_reference.py", file=sys.stderr
            )
            return 1
        return 0
    CONFIG_DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
